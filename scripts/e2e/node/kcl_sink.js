// A MultiLangDaemon child written with aws-kcl, the Node client of the daemon (npm), for the
// end-to-end tests of `kcl daemon --native` (kcl-e2e/tests/daemon_native.rs): nothing in it
// comes from this project's SDK. It writes what examples/file_sink writes, so the same ledger
// judges it:
//   OUT/records-<shardId>.tsv  shard, sequence number, sub-sequence number, partition key,
//                              payload (tab, newline, CR and backslash escaped)
//   OUT/events.tsv             epoch_ms, pid, shard, event (initialize <position>,
//                              shutdownRequested, leaseLost, shardEnded, exit 0)
// Each batch's lines are written (synchronously) before the batch's last record is
// checkpointed; shutdownRequested and shardEnded checkpoint everything delivered.
// Usage: node kcl_sink.js OUT   (aws-kcl found through NODE_PATH)
'use strict';

const fs = require('fs');
const path = require('path');
const kcl = require('aws-kcl');

const out = process.argv[2] || 'out';
fs.mkdirSync(out, { recursive: true });
let shard = '';

function escape(text) {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/\t/g, '\\t')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r');
}

function event(what) {
  fs.appendFileSync(path.join(out, 'events.tsv'), `${Date.now()}\t${process.pid}\t${shard}\t${what}\n`);
}

function done(what, callback) {
  return function (error) {
    if (error) {
      process.stderr.write(`kcl_sink: ${shard}: checkpoint at ${what} failed: ${error}\n`);
    }
    callback();
  };
}

const processor = {
  initialize: function (input, callback) {
    shard = input.shardId;
    const sequence = input.sequenceNumber;
    const position = sequence === 'TRIM_HORIZON' ? 'TrimHorizon'
      : sequence === 'LATEST' ? 'Latest'
      : sequence === 'AT_TIMESTAMP' ? 'AtTimestamp'
      : `Checkpoint(Position(${sequence}/${input.subSequenceNumber || 0}))`;
    event(`initialize ${position}`);
    callback();
  },

  processRecords: function (input, callback) {
    const records = input.records || [];
    if (records.length === 0) {
      callback();
      return;
    }
    const lines = records.map(function (record) {
      const payload = Buffer.from(record.data || '', 'base64').toString('utf8');
      return [shard, record.sequenceNumber, record.subSequenceNumber || 0,
        escape(record.partitionKey), escape(payload)].join('\t') + '\n';
    });
    fs.appendFileSync(path.join(out, `records-${shard}.tsv`), lines.join(''));
    const last = records[records.length - 1].sequenceNumber;
    input.checkpointer.checkpoint(last, done(last, callback));
  },

  leaseLost: function (input, callback) {
    event('leaseLost');
    callback();
  },

  shardEnded: function (input, callback) {
    event('shardEnded');
    input.checkpointer.checkpoint(done('SHARD_END', callback));
  },

  shutdownRequested: function (input, callback) {
    event('shutdownRequested');
    input.checkpointer.checkpoint(done('shutdown', callback));
  },
};

process.on('exit', function (code) {
  fs.appendFileSync(path.join(out, 'events.tsv'), `${Date.now()}\t${process.pid}\t\texit ${code === 0 ? '0' : 'error'}\n`);
});

kcl(processor).run();
