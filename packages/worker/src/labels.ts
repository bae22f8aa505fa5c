/**
 * The labels a task's container carries, as Docker's swarm mode sets them. The worker finds its
 * containers again after a restart by `com.docker.swarm.task.id`.
 */
export const LABEL_SERVICE_ID = 'com.docker.swarm.service.id';
export const LABEL_SERVICE_NAME = 'com.docker.swarm.service.name';
export const LABEL_TASK = 'com.docker.swarm.task';
export const LABEL_TASK_ID = 'com.docker.swarm.task.id';
export const LABEL_TASK_NAME = 'com.docker.swarm.task.name';
export const LABEL_NODE_ID = 'com.docker.swarm.node.id';
