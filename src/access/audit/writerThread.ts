// The audit writer thread (see writer.ts): builds each batch's journal entries and appends them through
// its own connection to the journal's database (on SQLite its own file, see ownDatabase.ts; already
// migrated by the main thread; the R4 definitions are not loaded here), one transaction per batch, and
// answers each message.
import { connectRecordDatabase } from '../../record/index.ts';
import { answerCalls, threadData } from '../../threads/index.ts';
import { SharedParts, journalEntryFor } from './auditEvent.ts';
import { JournalAppender, type ChainHead } from './journal.ts';
import { decodeBatch } from './batchMessage.ts';
import type { WriterCall } from './writer.ts';

const { database, observer } = threadData<{ database: string; observer: string }>();
let journal: JournalAppender | undefined;
let close: (() => Promise<void>) | undefined;
const parts = new SharedParts(observer);

function appender(): JournalAppender {
  if (!journal) {
    const driver = connectRecordDatabase(database);
    journal = new JournalAppender(driver);
    close = () => driver.close();
  }
  return journal;
}

// One call at a time, in the order sent: the chain is appended in order.
answerCalls<WriterCall, ChainHead | undefined>(async (call) => {
  if (call.close) {
    await close?.();
    return undefined;
  }
  return appender().append(decodeBatch(call.batch).map((r) => journalEntryFor(r, parts)));
});
