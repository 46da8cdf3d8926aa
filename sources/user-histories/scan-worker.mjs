// Worker threads do not inherit the CLI's TypeScript loader, so the worker registers tsx itself.
import { register } from 'tsx/esm/api';

register();
await import('./scan-worker.ts');
