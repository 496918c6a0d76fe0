// The load test's point of comparison: a Node.js server doing the same work
// as cliqhost on the bench handler, written the way Cliq's Node.js sample
// checks a call (crypto.createVerify over the raw body). Standard library
// only.
//
//   node bench/node/server.js PORT PUBLIC_KEY.pem [WORKERS]
//
// A cluster primary forks WORKERS processes (default: one per core) that
// share PORT (0 picks a free one). For POST / each worker reads the whole body, checks
// X-Cliq-Signature (RSA PKCS#1 v1.5 over SHA-256) and answers 401 on a
// missing or bad signature; otherwise it parses the JSON and answers with the
// card bench/scripts/commands/bench.lua builds. The primary prints
// "node listening on PORT" (the actual port) once every worker is listening.
'use strict';

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');

const MAX_BODY_BYTES = 1024 * 1024;

const [portArg, keyPath, workersArg] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || !keyPath) {
  console.error('usage: node server.js PORT PUBLIC_KEY.pem [WORKERS]');
  process.exit(2);
}
const workers = Number(workersArg) || os.availableParallelism();

// Splits argument text into words as cliq.args does (quotes keep spaces) and
// returns the positional ones, leaving out --flags and key=value options.
function positionalWords(text) {
  const words = [];
  const re = /(?:"[^"]*"|'[^']*'|[^\s"']+)+/g;
  for (const m of (text || '').matchAll(re)) {
    const w = m[0].replace(/"([^"]*)"|'([^']*)'/g, '$1$2');
    if (!/^--[\w-]+$/.test(w) && !/^[A-Za-z_][\w-]*=/.test(w)) words.push(w);
  }
  return words;
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function handle(publicKey, req, res) {
  if (req.method !== 'POST' || req.url !== '/') {
    send(res, 404, { error: 'not found' });
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      send(res, 413, { error: 'body too large' });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.headersSent) return;
    const body = Buffer.concat(chunks);
    const sig = req.headers['x-cliq-signature'];
    if (!sig) {
      send(res, 401, { error: 'missing X-Cliq-Signature header' });
      return;
    }
    const verify = crypto.createVerify('sha256');
    verify.update(body);
    let ok = false;
    try {
      ok = verify.verify(publicKey, sig, 'base64');
    } catch (e) {
      ok = false;
    }
    if (!ok) {
      send(res, 401, { error: 'X-Cliq-Signature does not match the body' });
      return;
    }
    let call;
    try {
      call = JSON.parse(body);
    } catch (e) {
      send(res, 400, { error: 'body is not JSON' });
      return;
    }
    const params = call.params || {};
    const a = positionalWords(params.arguments);
    const user = params.user || {};
    send(res, 200, {
      output: {
        text: `Deploying *${a[0] || '?'}* to *${a[1] || '?'}* for ${user.first_name || 'someone'}.`,
        card: { title: 'Deploy started', theme: 'modern-inline' },
      },
    });
  });
}

if (cluster.isPrimary) {
  let listening = 0;
  let shuttingDown = false;
  cluster.on('listening', (worker, address) => {
    if (++listening === workers) console.log(`node listening on ${address.port}`);
  });
  cluster.on('exit', (worker, code, signal) => {
    // A worker that dies during a run would skew the figures: stop everything.
    if (!shuttingDown) {
      console.error(`node worker ${worker.process.pid} exited (${signal || code})`);
      process.exit(1);
    }
  });
  const stop = () => {
    shuttingDown = true;
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));
  http.createServer((req, res) => handle(publicKey, req, res)).listen(port, '127.0.0.1');
}
