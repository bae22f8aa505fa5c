export { Template, TemplateError, show } from './template.js';
export { formatList, formatInspect, checkFormat, type FormatOptions } from './formatter.js';
export { alignColumns } from './tabwriter.js';
export { parseFilters, matchLabels, matchesAny, type Filters } from './filters.js';
