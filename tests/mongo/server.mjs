// server.mjs — the MongoDB wire-protocol server kasa's tests run against when no real MongoDB is named
// (KASA_TEST_MONGO_URI). It is CongoDB (npm @push.rocks/smartmongo 2.2.0, pinned in package-lock.json),
// in memory, on loopback, with one change: unique indexes are enforced as MongoDB enforces them.
//
// CongoDB stores unique indexes but its insert and update handlers never check them, so a duplicate key
// would be accepted. Here every insert and every update goes through a check of each unique index of its
// collection (a missing field counts as null, as in MongoDB); a duplicate fails with code 11000 and
// MongoDB's "E11000 duplicate key error" text, which the handlers report as a writeError. The tests prove
// this (a duplicate is refused with 11000) before anything relies on it.
//
//   node tests/mongo/server.mjs [--port N]     prints "ready mongodb://127.0.0.1:PORT" once it listens;
//                                              ends on SIGTERM or SIGINT (the test harness also
//                                              has it killed when the test process dies).
import { CongoServer } from '@push.rocks/smartmongo/dist_ts/congodb/index.js';

let port = 0;
for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i] === '--port' && i + 1 < process.argv.length) port = Number(process.argv[++i]);
    else { console.error(`server.mjs: unexpected argument ${process.argv[i]}`); process.exit(2); }
}
if (!Number.isInteger(port) || port < 0 || port > 65535) { console.error('server.mjs: bad --port'); process.exit(2); }

// The value of one key path, compared the way MongoDB's index compares it: numbers by value whatever
// their BSON type (int32, int64, double), everything else by type and canonical text.
function keyPart(doc, path) {
    let v = doc;
    for (const p of path.split('.')) {
        if (v === null || typeof v !== 'object' || !(p in v)) return 'null';
        v = v[p];
    }
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'number' || typeof v === 'bigint') return `n:${v}`;
    if (typeof v === 'object' && ['Long', 'Int32', 'Double'].includes(v._bsontype)) return `n:${v.toString()}`;
    if (typeof v === 'object' && v._bsontype === 'ObjectId') return `o:${v.toHexString()}`;
    if (typeof v === 'object' && v._bsontype) return `${v._bsontype}:${v.toString()}`;
    if (v instanceof Date) return `d:${v.getTime()}`;
    return `${typeof v}:${JSON.stringify(v)}`;
}

function enforceUniqueIndexes(storage) {
    const insertOne = storage.insertOne.bind(storage);
    const updateById = storage.updateById.bind(storage);
    async function check(db, coll, doc, selfId) {
        const indexes = (await storage.getIndexes(db, coll)).filter((ix) => ix.unique && ix.name !== '_id_');
        if (indexes.length === 0) return;
        const others = (await storage.findAll(db, coll)).filter((d) => !selfId || !d._id.equals(selfId));
        for (const ix of indexes) {
            const fields = Object.keys(ix.key);
            const mine = fields.map((f) => keyPart(doc, f)).join('|');
            if (others.some((d) => fields.map((f) => keyPart(d, f)).join('|') === mine)) {
                const err = new Error(`E11000 duplicate key error collection: ${db}.${coll} index: ${ix.name} dup key: ${mine}`);
                err.code = 11000;
                throw err;
            }
        }
    }
    storage.insertOne = async (db, coll, doc) => { await check(db, coll, doc, null); return insertOne(db, coll, doc); };
    storage.updateById = async (db, coll, id, doc) => { await check(db, coll, doc, id); return updateById(db, coll, id, doc); };
}

const server = new CongoServer({ port, host: '127.0.0.1', storage: 'memory' });
enforceUniqueIndexes(server.getStorage());
await server.start();
const addr = server.server && server.server.address ? server.server.address() : null;
const bound = addr && addr.port ? addr.port : port;
process.stdout.write(`ready mongodb://127.0.0.1:${bound}\n`);

let stopping = false;
async function stop() {
    if (stopping) return;
    stopping = true;
    try { await server.stop(); } catch (e) { /* ending anyway */ }
    process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
