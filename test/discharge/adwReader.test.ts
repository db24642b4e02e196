// ADW messages are read on a thread of their own before their batch's transaction (src/discharge/adw/reader.ts):
// what comes back across the thread is what reading in line gives, an unreadable message comes back as the
// sentence saying where it broke, and the thread can be closed and used again.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAdwMessage } from '../../src/discharge/index.ts';
import { threadAdwReader } from '../../src/discharge/adw/reader.ts';
import { EXAMPLES } from './support.ts';

describe('the ADW reader thread', () => {
  it('reads every official example as reading in line does, and says why a message is unreadable', async () => {
    const reader = threadAdwReader();
    try {
      for (const [name, xml] of Object.entries(EXAMPLES)) {
        assert.deepEqual(await reader.read(Buffer.from(xml)), { message: parseAdwMessage(xml) }, name);
      }
      const garbled = await reader.read(Buffer.from('<Bundle xmlns="http://hl7.org/fhir"><entry>'));
      assert.match(garbled.unreadable ?? '', /^The message is not well-formed XML: .+ \(line 1, column \d+\)\.$/);
      const doctype = await reader.read(Buffer.from('<!DOCTYPE x [<!ENTITY a "aaaa">]><Bundle/>'));
      assert.match(doctype.unreadable ?? '', /DOCTYPE/);
      // A body that is a view into a larger buffer (as a database driver may hand it over) is read alone.
      const within = Buffer.from(`junk${EXAMPLES['Assessment-Notice']}junk`).subarray(4, 4 + Buffer.byteLength(EXAMPLES['Assessment-Notice']));
      assert.equal((await reader.read(within)).message?.eventCode, parseAdwMessage(EXAMPLES['Assessment-Notice']).eventCode);
    } finally {
      await reader.close();
    }
    // Closed, it starts again on the next message.
    const again = await reader.read(Buffer.from(EXAMPLES['Assessment-Notice']));
    assert.ok(again.message?.headerId);
    await reader.close();
  });
});
