/**
 * Inventories: where hosts are, how to reach them, which groups and roles they have, and their vars.
 * Formats, precedence and patterns are described in load.ts, resolve.ts and select.ts.
 */
export { parseExtraVars } from './extra-vars.js';
export {
  type InterpolationContext,
  type InterpolationResult,
  interpolateVars,
  originOf,
} from './interpolate.js';
export { formatVarPath } from './layers.js';
export {
  displayPath,
  type LoadOptions,
  listEnvironments,
  loadInventory,
  resolveInventoryPath,
} from './load.js';
export { type RoleVarsContext, unknownRoleError, validateRoleVars, varsForRole } from './role-vars.js';
export { selectHosts } from './select.js';
export {
  formatOrigin,
  type Inventory,
  InventoryError,
  type InventoryGroup,
  type InventoryHost,
  type Origin,
  type RoleEntry,
} from './types.js';
