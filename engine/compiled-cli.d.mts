/** Types of compiled-cli.mjs, which is plain JavaScript because it runs before any TypeScript loader. */
export function sourceModules(root?: string): string[];
export function buildKey(root?: string): string;
export function compiledCli(root?: string, cache?: string): Promise<string | undefined>;
export function userModuleImporter(dir: string | undefined, root?: string): (url: string) => Promise<unknown>;
export function userModuleHooks(dir: string | undefined, root?: string): void;
export function compiledModule(dir: string, file: string): string;
export function compiledCounterpart(dir: string, root?: string): (source: string) => string | undefined;
