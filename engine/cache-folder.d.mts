/**
 * Types of cache-folder.mjs, which is plain JavaScript because bin/animind.mjs uses it before any TypeScript loader.
 */
export function cacheFolder(folders?: string[], packages?: string): string | undefined;
export function writeAside(file: string, data: string | Uint8Array): void;
