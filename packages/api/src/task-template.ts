/**
 * Docker's service templates (`--hostname "{{.Service.Name}}.{{.Task.Slot}}"`): placeholders
 * `{{.Service.ID}}`, `{{.Service.Name}}`, `{{.Task.ID}}`, `{{.Task.Name}}`, `{{.Task.Slot}}`,
 * `{{.Node.ID}}`, `{{.Node.Hostname}}`, `{{.Node.Platform.OS}}`, `{{.Node.Platform.Architecture}}`.
 * Only these field references: no functions or pipelines. Anything else is a clear error.
 * Shared by the worker (the container's hostname, env, labels, mounts) and the manager (the
 * hostname a task answers to on its networks), so both expand one template the same way.
 */
import { ShoalError } from '@shoal/common';
import type { Task } from './gen/shoal/task.js';

/** A template that uses a placeholder Shoal (and Docker) does not know. */
export class InvalidTemplateError extends ShoalError {
  constructor(message: string) {
    super('API_INVALID_TEMPLATE', message, { kind: 'invalid-argument' });
  }
}

/** The node a task runs on, as templates see it. */
export interface TemplateNode {
  id: string;
  hostname: string;
  os?: string;
  architecture?: string;
}

/** The values placeholders expand to for one task on one node. */
export function templateValues(task: Task, node: TemplateNode): Record<string, string> {
  return {
    'Service.ID': task.ServiceID ?? '',
    'Service.Name': task.ServiceName ?? '',
    'Task.ID': task.ID ?? '',
    'Task.Name': containerName(task),
    'Task.Slot': task.Slot ? String(task.Slot) : (task.NodeID ?? ''),
    'Node.ID': node.id,
    'Node.Hostname': node.hostname,
    'Node.Platform.OS': node.os ?? process.platform,
    'Node.Platform.Architecture': node.architecture ?? (process.arch === 'x64' ? 'x86_64' : process.arch),
  };
}

const PLACEHOLDER = /\{\{(.*?)\}\}/g;

/** Expands the placeholders of `text`; `what` names the field in errors. */
export function expandTemplate(text: string, values: Record<string, string>, what: string): string {
  if (!text.includes('{{')) return text;
  return text.replace(PLACEHOLDER, (_m, inner: string) => {
    const field = inner.trim();
    const key = field.startsWith('.') ? field.slice(1) : undefined;
    const v = key === undefined ? undefined : values[key];
    if (v === undefined) {
      throw new InvalidTemplateError(
        `${what}: template {{${inner}}} is not supported (use one of ${Object.keys(values)
          .map((k) => `{{.${k}}}`)
          .join(', ')})`,
      );
    }
    return v;
  });
}

/** The container's name: the task's name `<service>.<slot>.<task id>` (`<service>.<node id>.<task id>` for global). */
export function containerName(task: Task): string {
  if (task.Name) return task.Name;
  return `${task.ServiceName ?? ''}.${task.Slot ? String(task.Slot) : (task.NodeID ?? '')}.${task.ID ?? ''}`;
}
