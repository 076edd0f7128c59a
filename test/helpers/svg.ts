// A strict little XML reader for the SVG plots the repo's scripts write (elements, attributes,
// text and the five predefined entities; no DTD, comments or CDATA, which the plots never hold):
// it throws on any malformed markup, so a test that reads a plot through it also checks the plot
// is a well-formed document.

/** One element of the document. */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (not its children's), entities decoded. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: number): string {
  if (raw.includes('<')) throw new Error(`xml: raw '<' near offset ${where}`);
  return raw.replace(/&([^;\s]*);?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) throw new Error(`xml: bare '&' near offset ${where}`);
    if (name in ENTITIES) return ENTITIES[name];
    const code = /^#x([0-9a-f]+)$/i.exec(name)?.[1] ?? /^#([0-9]+)$/.exec(name)?.[1];
    if (code === undefined) throw new Error(`xml: unknown entity &${name}; near offset ${where}`);
    return String.fromCodePoint(name.startsWith('#x') ? parseInt(code, 16) : Number(code));
  });
}

function parseAttributes(source: string, where: number): Record<string, string> {
  const attributes: Record<string, string> = {};
  const rest = source.replace(/\s*([A-Za-z_:][\w:.-]*)="([^"]*)"/g, (_, name: string, value: string) => {
    if (name in attributes) throw new Error(`xml: attribute ${name} twice near offset ${where}`);
    attributes[name] = decode(value, where);
    return '';
  });
  if (rest.trim() !== '') throw new Error(`xml: cannot read attributes '${rest.trim()}' near offset ${where}`);
  return attributes;
}

/** Parses `source` (one root element, optionally surrounded by whitespace); throws if it is not well-formed. */
export function parseXml(source: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const tag = /<(\/?)([A-Za-z_:][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m = tag.exec(source); m; m = tag.exec(source)) {
    const between = source.slice(at, m.index);
    if (stack.length === 0) {
      if (between.trim() !== '') throw new Error(`xml: text outside the root element near offset ${at}`);
    } else {
      stack[stack.length - 1].text += decode(between, at);
    }
    const [, closing, name, attributes, selfClosing] = m;
    if (closing) {
      const open = stack.pop();
      if (!open || open.name !== name || attributes !== '' || selfClosing) throw new Error(`xml: </${name}> does not close ${open ? `<${open.name}>` : 'anything'} (offset ${m.index})`);
    } else {
      if (root && stack.length === 0) throw new Error(`xml: a second root element <${name}> (offset ${m.index})`);
      const element: XmlElement = { name, attributes: parseAttributes(attributes, m.index), children: [], text: '' };
      if (stack.length > 0) stack[stack.length - 1].children.push(element);
      else root = element;
      if (!selfClosing) stack.push(element);
    }
    at = tag.lastIndex;
  }
  if (source.slice(at).trim() !== '') throw new Error(`xml: unreadable markup or text after offset ${at}`);
  if (stack.length > 0) throw new Error(`xml: <${stack[stack.length - 1].name}> is never closed`);
  if (!root) throw new Error('xml: no element');
  return root;
}

/** Every element under `root` (itself included, document order) for which `test` holds. */
export function findAll(root: XmlElement, test: (e: XmlElement) => boolean): XmlElement[] {
  const found: XmlElement[] = [];
  const visit = (e: XmlElement): void => {
    if (test(e)) found.push(e);
    e.children.forEach(visit);
  };
  visit(root);
  return found;
}

/** Whether `e` has every class in `classes` (its `class` attribute, split on spaces). */
export function hasClass(e: XmlElement, ...classes: string[]): boolean {
  const own = (e.attributes.class ?? '').split(/\s+/);
  return classes.every((c) => own.includes(c));
}

/** The text of every element under `root` with all of `classes`, children's `<text>` included. */
export function textsOf(root: XmlElement, ...classes: string[]): string[] {
  return findAll(root, (e) => hasClass(e, ...classes)).flatMap((group) => findAll(group, (e) => e.name === 'text').map((t) => t.text));
}
