#!/usr/bin/python3
"""peer_ingest.py — the kind of webhook receiver kasa replaces, for the side-by-side figure of
tests/bench/bench_ingest.sh: FastAPI on uvicorn, Cobo's Ed25519 signature checked with PyNaCl
(libsodium), the body parsed as JSON, and one durable unique insert per transaction in SQLite
(WAL, synchronous=FULL: each commit is fsynced before the answer). 201 for a new transaction,
200 for a repeat (after the row it repeats is committed), 401 for a bad signature, 400 for a body
that is not a Cobo event.

    peer_ingest.py --port P --pubkey HEX --db FILE [--workers N]

Only Debian's packages: python3-fastapi, python3-uvicorn, python3-nacl.
"""
import argparse
import hashlib
import json
import os
import sqlite3
import threading

import nacl.exceptions
import nacl.signing
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

app = FastAPI()
_local = threading.local()
_key = None
_db_path = None


def _db():
    """One SQLite connection per worker thread (FastAPI runs plain `def` handlers on a pool)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(_db_path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        _local.conn = conn
    return conn


def _setup():
    global _key, _db_path
    _key = nacl.signing.VerifyKey(bytes.fromhex(os.environ["PEER_PUBKEY"]))
    _db_path = os.environ["PEER_DB"]
    conn = _db()
    conn.execute("CREATE TABLE IF NOT EXISTS deposits (transaction_id TEXT PRIMARY KEY, status TEXT, "
                 "body TEXT NOT NULL)")


@app.on_event("startup")
def _startup():
    _setup()


def _verdict(body: bytes, timestamp: str, signature: str):
    """(status, json text): Cobo's signature is Ed25519 over SHA-256(SHA-256(body + "|" + timestamp))."""
    if not timestamp or not signature:
        return 401, '{"error":"missing signature headers"}'
    digest = hashlib.sha256(hashlib.sha256(body + b"|" + timestamp.encode()).digest()).digest()
    try:
        _key.verify(digest, bytes.fromhex(signature))
    except (ValueError, nacl.exceptions.BadSignatureError):
        return 401, '{"error":"bad signature"}'
    try:
        event = json.loads(body)
        data = event["data"]
        tx = data["transaction_id"]
        status = data.get("status")
        if not isinstance(tx, str) or not tx:
            raise KeyError
    except (ValueError, KeyError, TypeError):
        return 400, '{"error":"not a Cobo event"}'
    conn = _db()
    cur = conn.execute("INSERT OR IGNORE INTO deposits VALUES (?, ?, ?)", (tx, status, body.decode()))
    if cur.rowcount == 1:
        return 201, '{"result":"created"}'
    return 200, '{"result":"repeat"}'


@app.post("/cobo/webhook")
async def cobo_webhook(request: Request):
    body = await request.body()
    # the check and the fsynced insert block: they run on the worker's thread pool, as a plain
    # `def` handler would
    status, text = await run_in_threadpool(_verdict, body, request.headers.get("biz-timestamp", ""),
                                           request.headers.get("biz-resp-signature", ""))
    return Response(content=text, status_code=status, media_type="application/json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pubkey", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    os.environ["PEER_PUBKEY"] = a.pubkey
    os.environ["PEER_DB"] = a.db
    import uvicorn
    uvicorn.run("peer_ingest:app", host="127.0.0.1", port=a.port, workers=a.workers, log_level="warning",
                access_log=False, app_dir=os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    main()
