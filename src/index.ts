/**
 * Verdandi's public API, for roles and playbooks:
 *   import { defineRole, definePlaybook, apt, template, service, z } from 'verdandi';
 */
export { z } from 'zod';
// HTTPS certificates from an ACME server (certbot), for the nginx and sites roles.
export {
  ACME_DEPLOY_HOOK,
  ACME_HTTP_DIR,
  ACME_WEBROOT,
  type Acme,
  acmeAccountTasks,
  acmeCaBundle,
  acmeCertificatePaths,
  acmeDirectory,
  acmeHostTasks,
  acmeNameProblem,
  acmeSchema,
  CERTBOT_DROP_IN,
  type CertificateRequest,
  certificateCurrentCheck,
  obtainCertificateTask,
  tlsSourceCheck,
} from './deploy/acme.js';
// The site model shared by the `sites` role (provision) and `verdandi deploy`; the role asks the site's
// runtime what it needs.
export { runtimeOf } from './deploy/runtimes/index.js';
export type { DeployRuntime, SiteRoleNeeds, SupervisorProgram } from './deploy/runtimes/runtime.js';
export { type Site, sitesVarsSchema } from './deploy/site.js';
export { MAINTENANCE_FLAG_DIR, MAINTENANCE_PAGE_DIR, type SitePaths, sitePaths } from './deploy/site-base.js';
// Read-only facts a role or play declares (`facts: { ... }`), gathered before the plan.
export {
  type CommandFactOptions,
  commandFact,
  type GroupEntry,
  getent,
  installedPackages,
  type PasswdEntry,
  type PathStat,
  stat,
} from './engine/declared-facts.js';
// Checks the built-in roles make of their vars, for a project's roles too.
export { type PasswordSource, passwordOf, refuseDuplicateNames } from './engine/role-checks.js';
export type {
  CommandResult,
  Fact,
  FactOutput,
  FactsSpec,
  FactValues,
  HostFacts,
  HostInfo,
  Plan,
  Play,
  Playbook,
  ProbeResult,
  Role,
  RoleDefinition,
  RoleRef,
  RunStep,
  Step,
  StepVerdict,
  Task,
  TaskList,
  TaskNameRef,
  TaskOptions,
  TaskRef,
  WriteStep,
} from './engine/types.js';
export { definePlay, definePlaybook, defineRole, taskBase } from './engine/types.js';
export * from './tasks/index.js';
export { UserError } from './util/errors.js';
export { and, quote, raw, sh, words } from './util/shell.js';
