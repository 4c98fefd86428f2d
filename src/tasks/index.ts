/** Every task type, one per file. Each returns a Task (see ../engine/types.ts). */
export { absent } from './absent.js';
export { apt } from './apt.js';
export { command, shell } from './command.js';
export { copy } from './copy.js';
export { directory } from './directory.js';
export { dockerContainer } from './docker-container.js';
export { dockerImage } from './docker-image.js';
export { dockerStack } from './docker-stack.js';
export { file } from './file.js';
export { git } from './git.js';
export { group } from './group.js';
export { lineinfile } from './lineinfile.js';
export { link } from './link.js';
export { postgresDb } from './postgres-db.js';
export { postgresUser } from './postgres-user.js';
export { service } from './service.js';
export { template } from './template.js';
export { user } from './user.js';
