// The ADW reader thread (see reader.ts): turns a message's bytes into its typed shape, off the thread that
// serves requests and commits the record.
import { answerCalls } from '../../threads/index.ts';
import { readAdw, type ReadAdw } from './reader.ts';

answerCalls<Uint8Array, ReadAdw>((bytes) => readAdw(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
