/**
 * The hanat version. scripts/build.mjs replaces `__HANAT_VERSION__` at bundle time;
 * unbundled (tests) it falls back to the workspace version.
 */
declare const __HANAT_VERSION__: string | undefined;

export const VERSION: string = typeof __HANAT_VERSION__ === 'string' ? __HANAT_VERSION__ : '0.1.0-dev';
