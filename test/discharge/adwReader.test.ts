// ADW messages are read on a thread of their own before their batch's transaction (src/discharge/adw/reader.ts):
// what comes back across the thread is what reading in line gives, an unreadable message comes back as the
// sentence saying where it broke, and the thread can be closed and used again.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAdwMessage } from '../../src/discharge/index.ts';
import { readAdw, threadAdwReader } from '../../src/discharge/adw/reader.ts';
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

  it('reads the bytes in the encoding the message gives (its BOM, else its XML declaration), and refuses bytes not valid in it', () => {
    const accented = EXAMPLES['Assessment-Notice'].replace('Leticia', 'Létícia');
    const expected = parseAdwMessage(accented);
    assert.equal(expected.author?.name, 'Létícia Gulliver');
    const utf16 = Buffer.from(`\uFEFF<?xml version="1.0" encoding="UTF-16"?>\r\n${accented}`, 'utf16le');
    const utf16be = Buffer.from(utf16).swap16();
    const forms: Record<string, Buffer> = {
      'UTF-8 with a BOM': Buffer.from(`\uFEFF<?xml version="1.0" encoding="UTF-8"?>\r\n${accented}`),
      'ISO-8859-1, declared': Buffer.from(`<?xml version="1.0" encoding="ISO-8859-1"?>\n${accented}`, 'latin1'),
      'UTF-16LE with a BOM': utf16,
      'UTF-16BE with a BOM': utf16be,
      // .NET writes encoding="utf-16" into XML built as a string, which the engine then sends as UTF-8.
      'UTF-8 declaring utf-16': Buffer.from(`<?xml version="1.0" encoding="utf-16"?>\n${accented}`),
    };
    for (const [name, bytes] of Object.entries(forms)) assert.deepEqual(readAdw(bytes), { message: expected }, name);
    // Latin-1 bytes that do not say so are not UTF-8: refused, not read as a garbled name.
    assert.match(readAdw(Buffer.from(accented, 'latin1')).unreadable ?? '', /^The message is not well-formed XML: its bytes are not valid UTF-8 .*encoding="ISO-8859-1"/);
    assert.match(readAdw(Buffer.from(`<?xml version="1.0" encoding="EBCDIC-CP-US"?>${accented}`)).unreadable ?? '', /declares encoding EBCDIC-CP-US/);
  });
});
