/**
 * A small, linear-time reader of WGSL's top level, for checking the WGSL a user hands to
 * `defineLayer` (src/layers/define.ts). Dawn compiles the source (and reports its errors); this
 * only answers what the library must know about it — which functions and resource variables it
 * declares, with which signatures, and which identifiers each function mentions — without a full
 * parser: one pass over the characters, never throwing, whatever the input.
 */

/** An identifier, a number or one punctuation character; comments and blanks are dropped. */
export interface Token {
  readonly text: string;
  readonly kind: 'identifier' | 'number' | 'punctuation';
  /** 1-based line of the token in the scanned source. */
  readonly line: number;
  /** Offsets of the token in the source. */
  readonly start: number;
  readonly end: number;
}

/** Blanks, a line comment, the start of a block comment, an identifier, a number, anything else. */
const TOKEN = /(\s+)|(\/\/[^\n\r]*)|(\/\*)|([\p{XID_Start}_]\p{XID_Continue}*)|(\.?\d[\p{XID_Continue}.]*)|(.)/suy;

/** Tokens of a source, and the line of a block comment that is never closed, if any. */
export interface Scan {
  readonly tokens: Token[];
  readonly unclosedComment?: number;
}

/** Splits `source` into tokens (WGSL block comments nest). */
export function tokenize(source: string): Token[] {
  return scan(source).tokens;
}

/** {@link tokenize}, also noting a block comment left open. */
export function scan(source: string): Scan {
  const tokens: Token[] = [];
  let unclosedComment: number | undefined;
  let line = 1;
  let at = 0;
  const newlinesUpTo = (end: number): void => {
    for (let k = at; k < end; k++) if (source.charCodeAt(k) === 10) line++;
  };
  while (at < source.length) {
    TOKEN.lastIndex = at;
    const match = TOKEN.exec(source);
    if (!match) break; // unreachable: the last alternative takes any character
    let end = at + match[0].length;
    if (match[3] !== undefined) {
      let depth = 1;
      let k = end;
      while (depth > 0 && k < source.length) {
        const open = source.indexOf('/*', k);
        const close = source.indexOf('*/', k);
        if (close < 0) {
          k = source.length;
          break;
        }
        if (open >= 0 && open < close) {
          depth++;
          k = open + 2;
        } else {
          depth--;
          k = close + 2;
        }
      }
      if (depth > 0) unclosedComment ??= line;
      end = k;
    } else if (match[4] !== undefined || match[5] !== undefined || match[6] !== undefined) {
      const kind = match[4] !== undefined ? 'identifier' : match[5] !== undefined ? 'number' : 'punctuation';
      tokens.push({ text: match[0], kind, line, start: at, end });
    }
    newlinesUpTo(end);
    at = end;
  }
  return { tokens, unclosedComment };
}

const PAIRS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

/**
 * What keeps `source` from being a self-contained list of module-scope declarations — a block
 * comment never closed, a bracket never closed or closed by the wrong one, a declaration not
 * ended by `;` or `}` — with its line; null when there is none. Such a source, composed with
 * others, would swallow or break what follows it.
 */
export function structureProblem(source: string, scanned: Scan = scan(source)): { line: number; message: string } | null {
  const { tokens, unclosedComment } = scanned;
  if (unclosedComment !== undefined) return { line: unclosedComment, message: 'this block comment (/*) is never closed' };
  const open: Token[] = [];
  let last: Token | undefined;
  for (const token of tokens) {
    const t = token.text;
    if (OPEN.has(t)) open.push(token);
    else if (CLOSE.has(t)) {
      const top = open.pop();
      if (!top || top.text !== PAIRS[t]) return { line: token.line, message: `'${t}' closes ${top ? `the '${top.text}' of line ${top.line}` : 'nothing'}` };
    }
    if (open.length === 0 && (t === ';' || t === '}')) last = undefined;
    else if (open.length === 0 && !CLOSE.has(t) && last === undefined) last = token;
  }
  if (open.length > 0) return { line: open[open.length - 1].line, message: `this '${open[open.length - 1].text}' is never closed` };
  if (last) return { line: last.line, message: `the declaration starting with '${last.text}' is not finished (no ';' or '}')` };
  return null;
}

/** An attribute `@name(args)` of a declaration. */
export interface Attribute {
  readonly name: string;
  /** The source text between the parentheses ('' without). */
  readonly args: string;
}

/** A declaration at module scope. */
export interface Declaration {
  /** `fn`, `var`, `const`, `struct`, `alias`, `override`, `enable`, … (the first word after the attributes). */
  readonly keyword: string;
  /** The declared name, when the declaration has one. */
  readonly name?: string;
  readonly attributes: readonly Attribute[];
  /** `var` only: the words of its template list (`['storage', 'read']`). */
  readonly template: readonly string[];
  /** `fn` only: the parameter types and the return type, blanks removed ('' when none). */
  readonly parameterTypes: readonly string[];
  readonly returnType: string;
  /** `fn` only: the identifiers its body mentions (member names after `.` excluded). */
  readonly mentions: ReadonlySet<string>;
  /** `alias` only: the aliased type, blanks removed. */
  readonly aliased: string;
  /** Line of the declaration's first token. */
  readonly line: number;
  /** Offsets of its first and past its last token in the source. */
  readonly start: number;
  readonly end: number;
}

const OPEN = new Set(['(', '[', '{']);
const CLOSE = new Set([')', ']', '}']);

/** Index just past the bracket that closes the one at `open` (any of ( [ { and also < > when `angles`). */
function closing(tokens: readonly Token[], open: number, angles = false): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    const t = tokens[k].text;
    if (OPEN.has(t) || (angles && t === '<')) depth++;
    else if (CLOSE.has(t) || (angles && t === '>')) depth--;
    if (depth <= 0) return k + 1;
  }
  return tokens.length;
}

function joined(tokens: readonly Token[], from: number, to: number): string {
  let text = '';
  for (let k = from; k < to; k++) text += tokens[k].text;
  return text;
}

/** Splits `list` (the tokens between two brackets) at its top-level commas; a trailing comma adds nothing. */
function splitAtCommas(tokens: readonly Token[], from: number, to: number): [number, number][] {
  const items: [number, number][] = [];
  let depth = 0;
  let start = from;
  for (let k = from; k < to; k++) {
    const t = tokens[k].text;
    if (OPEN.has(t) || t === '<') depth++;
    else if (CLOSE.has(t) || t === '>') depth--;
    else if (t === ',' && depth === 0) {
      items.push([start, k]);
      start = k + 1;
    }
  }
  if (start < to) items.push([start, to]);
  return items;
}

/** Skips the attributes starting at `k`; returns them and the index after them. */
function readAttributes(source: string, tokens: readonly Token[], k: number, end: number): [Attribute[], number] {
  const attributes: Attribute[] = [];
  while (k + 1 < end && tokens[k].text === '@') {
    const name = tokens[k + 1].text;
    k += 2;
    let args = '';
    if (k < end && tokens[k].text === '(') {
      const after = Math.min(closing(tokens, k), end);
      args = source.slice(tokens[k].end, tokens[after - 1].text === ')' ? tokens[after - 1].start : tokens[after - 1].end).trim();
      k = after;
    }
    attributes.push({ name, args });
  }
  return [attributes, k];
}

/** The type of one `name: type` item (attributes of the item skipped); '' when there is no `:`. */
function itemType(tokens: readonly Token[], from: number, to: number): string {
  for (let k = from; k < to; k++) if (tokens[k].text === ':') return joined(tokens, k + 1, to);
  return '';
}

function readDeclaration(source: string, tokens: readonly Token[], from: number, to: number): Declaration | null {
  const [attributes, k] = readAttributes(source, tokens, from, to);
  if (k >= to) return null;
  const keyword = tokens[k].text;
  let at = k + 1;
  const template: string[] = [];
  if (keyword === 'var' && tokens[at]?.text === '<') {
    const after = Math.min(closing(tokens, at, true), to);
    for (let j = at + 1; j < after - 1; j++) if (tokens[j].text !== ',') template.push(tokens[j].text);
    at = after;
  }
  const name = at < to && tokens[at].kind === 'identifier' ? tokens[at].text : undefined;
  const parameterTypes: string[] = [];
  let returnType = '';
  const mentions = new Set<string>();
  let aliased = '';
  if (keyword === 'fn' && name !== undefined && tokens[at + 1]?.text === '(') {
    const open = at + 1;
    const after = Math.min(closing(tokens, open), to);
    for (const [a, b] of splitAtCommas(tokens, open + 1, after - 1)) parameterTypes.push(itemType(tokens, a, b));
    let body = after;
    while (body < to && tokens[body].text !== '{') body++;
    if (tokens[after]?.text === '-' && tokens[after + 1]?.text === '>') {
      const [, typeStart] = readAttributes(source, tokens, after + 2, body);
      returnType = joined(tokens, typeStart, body);
    }
    for (let j = body; j < to; j++) {
      if (tokens[j].kind === 'identifier' && tokens[j - 1].text !== '.') mentions.add(tokens[j].text);
    }
  } else if (keyword === 'alias' && tokens[at + 1]?.text === '=') {
    const end = tokens[to - 1].text === ';' ? to - 1 : to;
    aliased = joined(tokens, at + 2, end);
  }
  return { keyword, name, attributes, template, parameterTypes, returnType, mentions, aliased, line: tokens[from].line, start: tokens[from].start, end: tokens[to - 1].end };
}

/**
 * The module-scope declarations of `source`, in order. A declaration ends at a `;` outside any
 * bracket or at the `}` that closes its body; unbalanced input ends the last one at the end.
 */
export function declarations(source: string, tokens: readonly Token[] = tokenize(source)): Declaration[] {
  const found: Declaration[] = [];
  let start = 0;
  let depth = 0;
  const end = (k: number): void => {
    const declaration = start < k ? readDeclaration(source, tokens, start, k) : null;
    if (declaration && declaration.keyword !== ';') found.push(declaration);
    start = k;
  };
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k].text;
    if (OPEN.has(t)) depth++;
    else if (CLOSE.has(t)) {
      depth = Math.max(0, depth - 1);
      if (t === '}' && depth === 0) end(k + 1);
    } else if (t === ';' && depth === 0) end(k + 1);
  }
  end(tokens.length);
  return found;
}

/**
 * The names a piece of WGSL depends on at module scope: what it declares there, and every
 * identifier it uses without declaring it (predeclared types, built-in functions, enumerants).
 * Local names (function parameters, `let`/`var`/`const` in bodies, struct members) and member
 * accesses are left out: a module-scope name equal to one of them does not change its meaning.
 */
export function moduleScopeNames(source: string): Set<string> {
  const tokens = tokenize(source);
  const names = new Set<string>();
  for (const declaration of declarations(source, tokens)) if (declaration.name) names.add(declaration.name);
  const local = new Set<string>();
  const used = new Set<string>();
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k].text;
    if (tokens[k].kind !== 'identifier') continue;
    const before = tokens[k - 1]?.text;
    if (before === '.' || before === '@') continue;
    const declared = tokens[k + 1]?.text === ':' || before === 'let' || before === 'const' || before === 'var' || isAfterVarTemplate(tokens, k);
    (declared ? local : used).add(t);
  }
  for (const t of used) if (!local.has(t)) names.add(t);
  return names;
}

/** Whether token k is the name right after `var<…>` (a declaration, not a use). */
function isAfterVarTemplate(tokens: readonly Token[], k: number): boolean {
  if (tokens[k - 1]?.text !== '>') return false;
  let j = k - 1;
  let depth = 0;
  for (; j >= 0; j--) {
    const t = tokens[j].text;
    if (t === '>') depth++;
    else if (t === '<') depth--;
    if (depth === 0) break;
  }
  return tokens[j - 1]?.text === 'var';
}
