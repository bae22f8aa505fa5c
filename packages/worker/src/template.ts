/**
 * The worker's side of Docker's service templates (@shoal/api task-template.ts): the same
 * expansion, with a bad template reported as the task's invalid spec.
 */
import { expandTemplate as expand, InvalidTemplateError, type TemplateNode } from '@shoal/api';
import { TaskSpecError } from './errors.js';

export { containerName, templateValues } from '@shoal/api';
export type NodeInfo = TemplateNode;

/** Expands the placeholders of `text`; `what` names the field in errors (TaskSpecError). */
export function expandTemplate(text: string, values: Record<string, string>, what: string): string {
  try {
    return expand(text, values, what);
  } catch (err) {
    if (err instanceof InvalidTemplateError) throw new TaskSpecError(err.message, { cause: err });
    throw err;
  }
}
