// ecosystem.config.js — kasa under PM2, for teams that know PM2 (systemd is the first choice on
// Linux: kasa.service). Start: pm2 start ecosystem.config.js; pm2 save; pm2 startup.
// Exactly one kasa per journal: the journal is locked, a second instance would refuse to start.
module.exports = {
  apps: [
    {
      name: 'kasa',
      script: '/usr/local/bin/kasa',
      args: 'serve --config /etc/kasa/kasa.env',
      interpreter: 'none',          // a native binary, not a Node script
      exec_mode: 'fork',
      instances: 1,
      cwd: '/var/lib/kasa',
      env: {
        KASA_JOURNAL_DIR: '/var/lib/kasa/journal',
        KASA_STATIC_DIR: '/usr/local/share/kasa/static',
      },
      autorestart: true,
      min_uptime: '10s',
      max_restarts: 50,
      restart_delay: 2000,
      kill_timeout: 30000,          // SIGTERM, then 30 s for a clean stop before SIGKILL
      watch: false,
      out_file: '/var/log/kasa/kasa.log',
      error_file: '/var/log/kasa/kasa.log',  // kasa logs to stderr: one file, rotated by logrotate
      merge_logs: true,
      time: false,                  // each line already starts with its UTC time
    },
  ],
};
