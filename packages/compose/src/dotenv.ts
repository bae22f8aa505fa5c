/**
 * A `.env` file as Compose v2 reads it (compat mode only): `KEY=VALUE` lines, optional
 * `export ` prefix, `#` comments, single quotes literal, double quotes with `\n`, `\t`, `\\`
 * and `\"` escapes, unquoted values cut at ` #` and trimmed. No interpolation inside.
 */
export function parseDotEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trimStart();
    const eq = line.indexOf('=');
    if (eq <= 0) {
      if (/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(line)) continue;
      throw new Error(`line ${i + 1}: unexpected character in variable name: ${JSON.stringify(line)}`);
    }
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key))
      throw new Error(`line ${i + 1}: invalid variable name ${JSON.stringify(key)}`);
    let value = line.slice(eq + 1).trimStart();
    if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      if (end < 0) throw new Error(`line ${i + 1}: unterminated quoted value`);
      value = value.slice(1, end);
    } else if (value.startsWith('"')) {
      let v = '';
      let j = 1;
      for (; j < value.length; j++) {
        const c = value[j];
        if (c === '\\' && j + 1 < value.length) {
          const n = value[++j];
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : (n ?? '');
          continue;
        }
        if (c === '"') break;
        v += c;
      }
      if (j >= value.length) throw new Error(`line ${i + 1}: unterminated quoted value`);
      value = v;
    } else {
      const hash = value.search(/\s#/);
      if (hash >= 0) value = value.slice(0, hash);
      value = value.trim();
    }
    out.set(key, value);
  }
  return out;
}
