// Preload for kinesis-local (`node -r ./loopback.js main.js`).
//
// kinesis-mock always listens on 0.0.0.0 and has no setting for the address. This preload
// rewrites the host of every TCP listen() call in the process to the loopback address, so
// the emulator is reachable from this machine only. Unix-socket listens are left alone.
'use strict';

const net = require('net');
const HOST = process.env.KCL_E2E_LISTEN_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value));
}

net.Server.prototype.listen = function patchedListen(...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen({ port, host, ... }) — only TCP options carry a port.
    if (first.port !== undefined && first.path === undefined) {
      args[0] = { ...first, host: HOST };
    }
  } else if (isPort(first)) {
    // listen(port[, host][, backlog][, callback])
    const second = args[1];
    if (second === undefined || second === null || typeof second === 'string') {
      args[1] = HOST;
    } else {
      args.splice(1, 0, HOST);
    }
  }
  return listen.apply(this, args);
};
