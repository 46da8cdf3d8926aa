/**
 * How a user's node module (`use: ./my-node.ts`) is imported. Run from source under tsx (the
 * tests, the benchmark) a plain import loads TypeScript already; the compiled CLI sets an
 * importer that registers the loader first (bin/animind.mjs, engine/compiled-cli.mjs).
 */
let importer = (url: string): Promise<unknown> => import(url);

export function setUserModuleImporter(importUrl: (url: string) => Promise<unknown>): void {
  importer = importUrl;
}

export const importUserModule = (url: string): Promise<unknown> => importer(url);
