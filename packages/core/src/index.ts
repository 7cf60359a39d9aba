export * from './tags.js';
export * from './aws.js';
export { VERSION } from './version.js';
export * from './ownership.js';
export * from './routes.js';
