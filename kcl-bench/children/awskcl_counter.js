// A counting processor on aws-kcl (npm), equivalent to examples/byte_count: decode every
// payload, count records and bytes, checkpoint at the last record of each batch.
'use strict';
const kcl = require('aws-kcl');

let records = 0;
let bytes = 0;

const processor = {
  initialize(input, completeCallback) {
    completeCallback();
  },
  processRecords(input, completeCallback) {
    let last = null;
    for (const record of input.records) {
      bytes += Buffer.from(record.data, 'base64').length;
      records += 1;
      last = record;
    }
    if (!last) {
      completeCallback();
      return;
    }
    input.checkpointer.checkpoint(last.sequenceNumber, () => completeCallback());
  },
  leaseLost(input, completeCallback) {
    process.stderr.write(`awskcl-counter: ${records} records, ${bytes} bytes\n`);
    completeCallback();
  },
  shardEnded(input, completeCallback) {
    input.checkpointer.checkpoint(() => completeCallback());
  },
  shutdownRequested(input, completeCallback) {
    input.checkpointer.checkpoint(() => completeCallback());
  },
};

kcl(processor).run();
