// Worker threads do not inherit the CLI's TypeScript loader, so the writer thread registers tsx itself.
import { register } from 'tsx/esm/api';

register();
await import('./parquet-writer.ts');
