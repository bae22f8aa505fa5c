/**
 * An image reference as Docker's daemon stores it in a service spec: the familiar name (without
 * `docker.io/` and, for official images, `library/`), and `:latest` when it has neither tag nor
 * digest (`library/nginx` → `nginx:latest`, `docker.io/x/y` → `x/y:latest`). Other registries'
 * names are kept as written (`registry:5000/app` → `registry:5000/app:latest`).
 */
export function familiarImage(image: string): string {
  if (image === '') return image;
  let name = image;
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const docker = first === 'docker.io' || first === 'index.docker.io';
  if (docker) name = name.slice(slash + 1);
  const isDomain = first.includes('.') || first.includes(':') || first === 'localhost';
  if ((!isDomain || docker) && /^library\/[^/]+$/.test(name)) name = name.slice('library/'.length);
  if (name.includes('@')) return name;
  const lastPart = name.slice(name.lastIndexOf('/') + 1);
  return lastPart.includes(':') ? name : `${name}:latest`;
}
