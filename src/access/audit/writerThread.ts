// The audit writer thread (see writer.ts): indexes each batch and appends it (batchJournal.ts) through
// its own connection to the journal's database (on SQLite its own file, see ownDatabase.ts; already
// migrated by the main thread; the R4 definitions are not loaded here), one transaction per batch, and
// answers each message.
import { connectRecordDatabase } from '../../record/index.ts';
import { answerCalls, threadData, yieldToRequestThreads } from '../../threads/index.ts';
import { BatchAppender, type ChainHead } from './batchJournal.ts';
import { AUDIT_WRITER_NICE, type WriterCall } from './writer.ts';

const { database, observer } = threadData<{ database: string; observer: string }>();
yieldToRequestThreads(AUDIT_WRITER_NICE);
let journal: BatchAppender | undefined;
let close: (() => Promise<void>) | undefined;

function appender(): BatchAppender {
  if (!journal) {
    const driver = connectRecordDatabase(database);
    journal = new BatchAppender(driver, observer);
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
  return appender().append(call.batch);
});
