/**
 * Reads Bicep with a real parser and evaluates the small part of the language the infrastructure templates use,
 * so tests can check them without the Bicep CLI (which downloads a binary and cannot be installed here).
 *
 * - Parsing: the tree-sitter Bicep grammar (`tree-sitter-bicep`, its published WebAssembly build) run by
 *   `web-tree-sitter`: no native build, no network. It checks syntax only: no types, no resource schemas.
 * - Evaluation: literals, strings with interpolation, objects, arrays, parameters (given or default), variables,
 *   `?:`, `==`, `!=`, `&&`, `||`, `!`, member and index access, and the functions the templates call. A module
 *   output or a resource property has no value before a deployment: the caller supplies one per expression
 *   (`placeholders`), and anything else that cannot be evaluated throws, naming the expression.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Language, type Node, Parser } from 'web-tree-sitter';

let parser: Promise<Parser> | undefined;

function bicepParser(): Promise<Parser> {
  parser ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-bicep/tree-sitter-bicep.wasm');
    const language = await Language.load(readFileSync(wasm));
    const p = new Parser();
    p.setLanguage(language);
    return p;
  })();
  return parser;
}

export async function parseBicep(source: string): Promise<Node> {
  const tree = (await bicepParser()).parse(source);
  if (!tree) throw new Error('tree-sitter returned no tree');
  return tree.rootNode;
}

function where(node: Node): string {
  return `${node.startPosition.row + 1}:${node.startPosition.column + 1}`;
}

/** Every ERROR and MISSING node, as `line:column type "text"`. Empty for a file the grammar accepts. */
export function syntaxErrors(root: Node): string[] {
  const errors: string[] = [];
  const walk = (node: Node): void => {
    if (node.isError || node.isMissing) {
      errors.push(
        `${where(node)} ${node.isMissing ? `missing ${node.type}` : 'unexpected'} "${node.text.slice(0, 60)}"`,
      );
    }
    for (const child of node.children) walk(child);
  };
  walk(root);
  return errors;
}

// ---------------------------------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------------------------------

export interface Decorated {
  name: string;
  node: Node;
  /** Decorator name → its argument nodes (`@allowed([...])` → [array]). */
  decorators: Map<string, Node[]>;
}

export interface ParamDeclaration extends Decorated {
  type: string;
  defaultValue: Node | undefined;
}

export interface ResourceDeclaration extends Decorated {
  /** `Microsoft.Storage/storageAccounts@2024-01-01`, or `config` for a nested child. */
  typeAndVersion: string;
  existing: boolean;
  body: Node;
  condition: Node | undefined;
}

export interface ModuleDeclaration extends Decorated {
  path: string;
  body: Node;
}

export interface BicepFile {
  path: string;
  source: string;
  root: Node;
  params: Map<string, ParamDeclaration>;
  vars: Map<string, Node>;
  resources: Map<string, ResourceDeclaration>;
  modules: Map<string, ModuleDeclaration>;
  outputs: Map<string, Decorated & { value: Node }>;
}

function named(node: Node): Node[] {
  return node.namedChildren.filter((child) => child.type !== 'comment' && child.type !== 'diagnostic_comment');
}

function decoratorsOf(node: Node): Map<string, Node[]> {
  const result = new Map<string, Node[]>();
  let previous = node.previousNamedSibling;
  while (previous && (previous.type === 'comment' || previous.type === 'diagnostic_comment')) {
    previous = previous.previousNamedSibling;
  }
  if (previous?.type !== 'decorators') return result;
  for (const decorator of named(previous)) {
    const call = named(decorator)[0];
    const fn = call?.childForFieldName('function');
    const args = call?.childForFieldName('arguments');
    if (fn && args) result.set(fn.text, named(args));
  }
  return result;
}

/** The text of a string literal without interpolation; throws otherwise. */
export function stringLiteral(node: Node): string {
  if (node.type !== 'string' || named(node).some((child) => child.type === 'interpolation')) {
    throw new Error(`${where(node)}: expected a plain string, got ${node.type} "${node.text}"`);
  }
  return evaluate(node, emptyScope()) as string;
}

function expectChild(node: Node, type: string): Node {
  const child = named(node).find((c) => c.type === type);
  if (!child) throw new Error(`${where(node)}: no ${type} in ${node.type}`);
  return child;
}

export function readDeclarations(path: string, source: string, root: Node): BicepFile {
  const file: BicepFile = {
    path,
    source,
    root,
    params: new Map(),
    vars: new Map(),
    resources: new Map(),
    modules: new Map(),
    outputs: new Map(),
  };
  for (const statement of named(root)) {
    const parts = named(statement);
    const name = parts[0]?.type === 'identifier' ? parts[0].text : '';
    const decorators = decoratorsOf(statement);
    switch (statement.type) {
      case 'parameter_declaration': {
        const [, type, defaultValue] = parts;
        file.params.set(name, { name, node: statement, decorators, type: type?.text ?? '', defaultValue });
        break;
      }
      case 'variable_declaration': {
        const value = parts[1];
        if (value) file.vars.set(name, value);
        break;
      }
      case 'resource_declaration': {
        const typeAndVersion = stringLiteral(expectChild(statement, 'string'));
        const existing = statement.children.some((child) => child.type === 'existing');
        const conditional = parts.find((p) => p.type === 'if_statement');
        const body = conditional ? expectChild(conditional, 'object') : expectChild(statement, 'object');
        const condition = conditional ? expectChild(conditional, 'parenthesized_expression') : undefined;
        file.resources.set(name, { name, node: statement, decorators, typeAndVersion, existing, body, condition });
        break;
      }
      case 'module_declaration': {
        const path = stringLiteral(expectChild(statement, 'string'));
        const conditional = parts.find((p) => p.type === 'if_statement');
        const body = conditional ? expectChild(conditional, 'object') : expectChild(statement, 'object');
        file.modules.set(name, { name, node: statement, decorators, path, body });
        break;
      }
      case 'output_declaration': {
        const value = parts[parts.length - 1];
        if (value) file.outputs.set(name, { name, node: statement, decorators, value });
        break;
      }
      default:
        break;
    }
  }
  return file;
}

export async function readBicepFile(path: string, source = readFileSync(path, 'utf8')): Promise<BicepFile> {
  return readDeclarations(path, source, await parseBicep(source));
}

/** Every resource declaration, nested ones (`resource x 'config' = {...}` inside a resource) included. */
export function allResources(file: BicepFile): ResourceDeclaration[] {
  const found: ResourceDeclaration[] = [...file.resources.values()];
  const walk = (node: Node, top: boolean): void => {
    for (const child of named(node)) {
      if (child.type === 'resource_declaration' && !top) {
        const parts = named(child);
        const typeAndVersion = stringLiteral(expectChild(child, 'string'));
        found.push({
          name: parts[0]?.text ?? '',
          node: child,
          decorators: new Map(),
          typeAndVersion,
          existing: child.children.some((c) => c.type === 'existing'),
          body: expectChild(child, 'object'),
          condition: undefined,
        });
      }
      walk(child, false);
    }
  };
  for (const resource of file.resources.values()) walk(resource.body, false);
  return found;
}

/** The value node of `key` in an object literal (identifier or string key). */
export function objectProperty(object: Node, key: string): Node | undefined {
  for (const property of named(object)) {
    if (property.type !== 'object_property') continue;
    const [keyNode, value] = named(property);
    if (!keyNode || !value) continue;
    const name = keyNode.type === 'string' ? stringLiteral(keyNode) : keyNode.text;
    if (name === key) return value;
  }
  return undefined;
}

/** `properties.functionAppConfig.runtime` → the node at that path in nested object literals. */
export function propertyPath(object: Node, path: string): Node | undefined {
  let node: Node | undefined = object;
  for (const key of path.split('.')) {
    if (node?.type !== 'object') return undefined;
    node = objectProperty(node, key);
  }
  return node;
}

/** Every key of an object literal, in order; an interpolated key as written (`${identityId}`). */
export function objectKeys(object: Node): string[] {
  return named(object)
    .filter((p) => p.type === 'object_property')
    .map((p) => {
      const keyNode = named(p)[0];
      if (!keyNode) throw new Error(`${where(p)}: property without a key`);
      if (keyNode.type !== 'string') return keyNode.text;
      return named(keyNode).some((c) => c.type === 'interpolation')
        ? keyNode.text.slice(1, -1)
        : stringLiteral(keyNode);
    });
}

/** Every node of one type below `node`. */
export function descendantsOfType(node: Node, type: string): Node[] {
  const found: Node[] = [];
  const walk = (n: Node): void => {
    if (n.type === type) found.push(n);
    for (const child of n.children) walk(child);
  };
  walk(node);
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------------------

export type Value = string | number | boolean | null | Value[] | { [key: string]: Value };

export interface Scope {
  file: BicepFile | undefined;
  /** Values of parameters; a parameter absent here takes its default. */
  params: Record<string, Value>;
  /** Values for module outputs and resource properties, keyed by the expression text (`storage.outputs.name`). */
  placeholders: Record<string, Value>;
  /** Module files by symbol, to check that a module output a placeholder stands for is declared. */
  moduleFiles?: Record<string, BicepFile>;
  /** Values of `uniqueString(...)`, `tenant()`, `subscription()` and `resourceGroup()`. */
  platform?: { uniqueString: string; tenantId: string; subscriptionId: string; resourceGroup?: string };
}

export function emptyScope(): Scope {
  return { file: undefined, params: {}, placeholders: {} };
}

function isObject(value: Value): value is { [key: string]: Value } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ESCAPES: Record<string, string> = { "\\'": "'", '\\\\': '\\', '\\n': '\n', '\\r': '\r', '\\t': '\t', '\\$': '$' };

function fail(node: Node, scope: Scope, message: string): never {
  throw new Error(`${scope.file?.path ?? '<snippet>'}:${where(node)}: ${message}`);
}

/**
 * tree-sitter-bicep 1.1.0 attaches a trailing `.x` or `[i]` to the whole expression before it instead of to its last
 * operand: `a == b.c` comes out as `(a == b).c`, `c ? t : f.x` as `(c ? t : f).x`. Bicep binds member access and
 * indexing tightest, so expressions are rebuilt here: the postfix goes down to the rightmost operand, and binary
 * operator chains are re-associated by Bicep's precedence (learn.microsoft.com, "Bicep operators").
 */
type Expr =
  | { kind: 'leaf'; node: Node }
  | { kind: 'paren'; inner: Expr; node: Node }
  | { kind: 'member'; object: Expr; property: string; node: Node }
  | { kind: 'index'; object: Expr; index: Expr; node: Node }
  | { kind: 'unary'; operator: string; argument: Expr; node: Node }
  | { kind: 'binary'; operator: string; left: Expr; right: Expr; node: Node }
  | { kind: 'ternary'; condition: Expr; consequence: Expr; alternative: Expr; node: Node };

const PRECEDENCE: Record<string, number> = {
  '*': 6,
  '/': 6,
  '%': 6,
  '+': 5,
  '-': 5,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '==': 3,
  '!=': 3,
  '=~': 3,
  '!~': 3,
  '&&': 2,
  '||': 1,
  '??': 0,
};

function part(node: Node, field: string): Node {
  const child = node.childForFieldName(field);
  if (!child) throw new Error(`${where(node)}: ${node.type} without ${field}`);
  return child;
}

function toExpr(node: Node): Expr {
  switch (node.type) {
    case 'parenthesized_expression': {
      const inner = named(node)[0];
      if (!inner) throw new Error(`${where(node)}: empty parentheses`);
      return { kind: 'paren', inner: toExpr(inner), node };
    }
    case 'member_expression': {
      const property = part(node, 'property').text;
      return attachPostfix(toExpr(part(node, 'object')), (object) => ({ kind: 'member', object, property, node }));
    }
    case 'subscript_expression': {
      const index = toExpr(part(node, 'index'));
      return attachPostfix(toExpr(part(node, 'object')), (object) => ({ kind: 'index', object, index, node }));
    }
    case 'unary_expression':
      return { kind: 'unary', operator: part(node, 'operator').text, argument: toExpr(part(node, 'argument')), node };
    case 'binary_expression':
      return reassociate({
        kind: 'binary',
        operator: part(node, 'operator').text,
        left: toExpr(part(node, 'left')),
        right: toExpr(part(node, 'right')),
        node,
      });
    case 'ternary_expression':
      return {
        kind: 'ternary',
        condition: toExpr(part(node, 'condition')),
        consequence: toExpr(part(node, 'consequence')),
        alternative: toExpr(part(node, 'alternative')),
        node,
      };
    default:
      return { kind: 'leaf', node };
  }
}

/** Applies a postfix to the rightmost operand, where Bicep binds it. */
function attachPostfix(expr: Expr, wrap: (object: Expr) => Expr): Expr {
  switch (expr.kind) {
    case 'binary':
      return reassociate({ ...expr, right: attachPostfix(expr.right, wrap) });
    case 'unary':
      return { ...expr, argument: attachPostfix(expr.argument, wrap) };
    case 'ternary':
      return { ...expr, alternative: attachPostfix(expr.alternative, wrap) };
    default:
      return wrap(expr);
  }
}

/** Flattens a chain of binary operators (parentheses stay whole) and rebuilds it by precedence, left-associative. */
function reassociate(expr: Expr & { kind: 'binary' }): Expr {
  const operands: Expr[] = [];
  const operators: string[] = [];
  const flatten = (e: Expr): void => {
    if (e.kind === 'binary') {
      flatten(e.left);
      operators.push(e.operator);
      flatten(e.right);
    } else operands.push(e);
  };
  flatten(expr);
  let next = 0;
  const climb = (minimum: number): Expr => {
    let left = operands[next] as Expr;
    while (next < operators.length && (PRECEDENCE[operators[next] as string] ?? -1) >= minimum) {
      const operator = operators[next] as string;
      next += 1;
      const right = climb((PRECEDENCE[operator] ?? 0) + 1);
      left = { kind: 'binary', operator, left, right, node: expr.node };
    }
    return left;
  };
  return climb(0);
}

/** `a.b.c` → ['a', 'b', 'c'] when the chain is identifiers and property names only. */
function memberChain(expr: Expr): string[] | undefined {
  if (expr.kind === 'leaf') return expr.node.type === 'identifier' ? [expr.node.text] : undefined;
  if (expr.kind !== 'member') return undefined;
  const head = memberChain(expr.object);
  return head ? [...head, expr.property] : undefined;
}

function callFunction(node: Node, scope: Scope, name: string, args: Node[]): Value {
  const values = () => args.map((arg) => evaluate(arg, scope));
  const platform = () => scope.platform ?? fail(node, scope, `${name}() needs scope.platform`);
  switch (name) {
    case 'union': {
      const all = values();
      if (!all.every(isObject)) fail(node, scope, 'union() of non-objects is not supported here');
      return Object.assign({}, ...all);
    }
    case 'empty': {
      const [v] = values();
      if (v === null || v === undefined) return true;
      if (typeof v === 'string' || Array.isArray(v)) return v.length === 0;
      if (isObject(v)) return Object.keys(v).length === 0;
      return fail(node, scope, `empty() of ${typeof v}`);
    }
    case 'string': {
      const [v] = values();
      return typeof v === 'string' ? v : JSON.stringify(v);
    }
    case 'toLower': {
      const [v] = values();
      if (typeof v !== 'string') fail(node, scope, 'toLower() of a non-string');
      return v.toLowerCase();
    }
    case 'take': {
      const [v, n] = values();
      if (typeof v !== 'string' || typeof n !== 'number') fail(node, scope, 'take() supports (string, int) only');
      return v.slice(0, Math.max(0, n));
    }
    case 'uniqueString':
      values();
      return platform().uniqueString;
    case 'tenant':
      return { tenantId: platform().tenantId };
    case 'resourceGroup': {
      const { subscriptionId, resourceGroup } = platform();
      if (!resourceGroup) fail(node, scope, 'resourceGroup() needs scope.platform.resourceGroup');
      return { id: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`, name: resourceGroup };
    }
    case 'guid': {
      // Deterministic like ARM's (not the same value): a UUID-shaped hash of the arguments.
      const hash = createHash('sha1').update(JSON.stringify(values())).digest('hex');
      return `${hash.slice(0, 8)}-${hash.slice(8, 12)}-5${hash.slice(13, 16)}-8${hash.slice(17, 20)}-${hash.slice(20, 32)}`;
    }
    case 'subscription':
      return { id: `/subscriptions/${platform().subscriptionId}`, subscriptionId: platform().subscriptionId };
    case 'loadJsonContent': {
      const [path] = values();
      if (typeof path !== 'string' || !scope.file) fail(node, scope, 'loadJsonContent() needs a literal path');
      return JSON.parse(readFileSync(resolve(dirname(scope.file.path), path), 'utf8')) as Value;
    }
    default:
      return fail(node, scope, `function ${name}() is not supported by this evaluator`);
  }
}

export function evaluate(node: Node, scope: Scope): Value {
  return evaluateExpr(toExpr(node), scope);
}

function evaluateExpr(expr: Expr, scope: Scope): Value {
  const { node } = expr;
  switch (expr.kind) {
    case 'leaf':
      return evaluateLeaf(node, scope);
    case 'paren':
      return evaluateExpr(expr.inner, scope);
    case 'member':
      return evaluateMember(expr, scope);
    case 'index': {
      const object = evaluateExpr(expr.object, scope);
      const index = evaluateExpr(expr.index, scope);
      if (Array.isArray(object) && typeof index === 'number')
        return object[index] ?? fail(node, scope, 'index out of range');
      if (isObject(object) && typeof index === 'string') return object[index] ?? fail(node, scope, `no key ${index}`);
      return fail(node, scope, 'unsupported subscript');
    }
    case 'unary': {
      const argument = evaluateExpr(expr.argument, scope);
      if (expr.operator === '!' && typeof argument === 'boolean') return !argument;
      if (expr.operator === '-' && typeof argument === 'number') return -argument;
      return fail(node, scope, `unary ${expr.operator} on ${typeof argument}`);
    }
    case 'binary':
      return evaluateBinary(expr, scope);
    case 'ternary': {
      const condition = evaluateExpr(expr.condition, scope);
      if (typeof condition !== 'boolean') fail(node, scope, `condition is ${typeof condition}, not a boolean`);
      return evaluateExpr(condition ? expr.consequence : expr.alternative, scope);
    }
  }
}

function evaluateBinary(expr: Expr & { kind: 'binary' }, scope: Scope): Value {
  const left = () => evaluateExpr(expr.left, scope);
  const right = () => evaluateExpr(expr.right, scope);
  switch (expr.operator) {
    case '==':
      return JSON.stringify(left()) === JSON.stringify(right());
    case '!=':
      return JSON.stringify(left()) !== JSON.stringify(right());
    case '&&': {
      const l = left();
      if (typeof l !== 'boolean') fail(expr.node, scope, '&& on a non-boolean');
      return l ? right() : false;
    }
    case '||': {
      const l = left();
      if (typeof l !== 'boolean') fail(expr.node, scope, '|| on a non-boolean');
      return l ? true : right();
    }
    case '??': {
      const l = left();
      return l === null ? right() : l;
    }
    default:
      return fail(expr.node, scope, `operator ${expr.operator} is not supported by this evaluator`);
  }
}

function evaluateLeaf(node: Node, scope: Scope): Value {
  switch (node.type) {
    case 'string': {
      let text = '';
      for (const piece of node.namedChildren) {
        if (piece.type === 'string_content') text += piece.text;
        else if (piece.type === 'escape_sequence') {
          const unicode = /^\\u\{([0-9a-fA-F]+)\}$/.exec(piece.text);
          text += unicode?.[1]
            ? String.fromCodePoint(Number.parseInt(unicode[1], 16))
            : (ESCAPES[piece.text] ?? fail(piece, scope, `escape ${piece.text}`));
        } else if (piece.type === 'interpolation') {
          const inner = named(piece)[0] ?? fail(piece, scope, 'empty interpolation');
          const value = evaluate(inner, scope);
          text += typeof value === 'string' ? value : JSON.stringify(value);
        }
      }
      // A multi-line string '''...''' drops the newline right after the opening quotes.
      return node.text.startsWith("'''") ? text.replace(/^\r?\n/, '') : text;
    }
    case 'number':
      return Number(node.text);
    case 'boolean':
      return node.text === 'true';
    case 'null':
      return null;
    case 'array':
      return named(node).map((item) => evaluate(item, scope));
    case 'object': {
      const result: Record<string, Value> = {};
      for (const property of named(node)) {
        if (property.type !== 'object_property') fail(property, scope, `${property.type} in an object`);
        const [keyNode, valueNode] = named(property);
        if (!keyNode || !valueNode) fail(property, scope, 'incomplete property');
        const key = keyNode.type === 'string' ? String(evaluate(keyNode, scope)) : keyNode.text;
        result[key] = evaluate(valueNode, scope);
      }
      return result;
    }
    case 'call_expression': {
      const fn = node.childForFieldName('function');
      const args = node.childForFieldName('arguments');
      if (fn?.type !== 'identifier' || !args) return fail(node, scope, `call of ${fn?.text}`);
      return callFunction(node, scope, fn.text, named(args));
    }
    case 'identifier':
      return evaluateName(node, scope, node.text);
    default:
      return fail(node, scope, `${node.type} "${node.text}" is not supported by this evaluator`);
  }
}

function evaluateMember(expr: Expr & { kind: 'member' }, scope: Scope): Value {
  const { node } = expr;
  const chain = memberChain(expr);
  const file = scope.file;
  const head = chain?.[0];
  // Module outputs and resource properties only exist after a deployment: the test supplies them.
  if (chain && head && file && (file.modules.has(head) || file.resources.has(head))) {
    const key = chain.join('.');
    if (file.modules.has(head)) {
      const output = chain[2];
      const moduleFile = scope.moduleFiles?.[head];
      if (chain[1] !== 'outputs' || !output) fail(node, scope, `${key}: only module outputs can be read`);
      if (moduleFile && !moduleFile.outputs.has(output)) {
        fail(node, scope, `${key}: ${moduleFile.path} declares no output ${output}`);
      }
    }
    if (!(key in scope.placeholders)) fail(node, scope, `no placeholder value for ${key}`);
    return scope.placeholders[key] as Value;
  }
  const object = evaluateExpr(expr.object, scope);
  if (isObject(object) && expr.property in object) return object[expr.property] as Value;
  return fail(node, scope, `no property ${expr.property} in ${JSON.stringify(object)?.slice(0, 80)}`);
}

function evaluateName(node: Node, scope: Scope, name: string): Value {
  const file = scope.file ?? fail(node, scope, `${name} outside a file`);
  if (file.modules.has(name) || file.resources.has(name)) {
    if (!(name in scope.placeholders)) fail(node, scope, `no placeholder value for ${name}`);
    return scope.placeholders[name] as Value;
  }
  if (name in scope.params) return scope.params[name] as Value;
  const param = file.params.get(name);
  if (param) {
    if (!param.defaultValue) fail(node, scope, `parameter ${name} has no value and no default`);
    return evaluate(param.defaultValue, scope);
  }
  const variable = file.vars.get(name);
  if (variable) return evaluate(variable, scope);
  return fail(node, scope, `unknown name ${name}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Module calls
// ---------------------------------------------------------------------------------------------------------------

function typeMatches(type: string, value: Value): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'bool':
      return typeof value === 'boolean';
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    default:
      return true;
  }
}

/** What ARM would refuse about one parameter value: its type and its decorators. */
export function parameterProblems(param: ParamDeclaration, value: Value, scope: Scope): string[] {
  const problems: string[] = [];
  const say = (message: string) => problems.push(`${param.name}: ${message}`);
  if (!typeMatches(param.type, value)) say(`expected ${param.type}, got ${JSON.stringify(value)}`);
  const arg = (decorator: string) => {
    const node = param.decorators.get(decorator)?.[0];
    return node ? evaluate(node, { ...scope, file: undefined }) : undefined;
  };
  const allowed = arg('allowed');
  if (Array.isArray(allowed) && !allowed.some((a) => JSON.stringify(a) === JSON.stringify(value))) {
    say(`${JSON.stringify(value)} is not one of ${JSON.stringify(allowed)}`);
  }
  const length = typeof value === 'string' || Array.isArray(value) ? value.length : undefined;
  const minLength = arg('minLength');
  const maxLength = arg('maxLength');
  if (length !== undefined && typeof minLength === 'number' && length < minLength) say(`shorter than ${minLength}`);
  if (length !== undefined && typeof maxLength === 'number' && length > maxLength) say(`longer than ${maxLength}`);
  const minValue = arg('minValue');
  const maxValue = arg('maxValue');
  if (typeof value === 'number' && typeof minValue === 'number' && value < minValue) say(`below ${minValue}`);
  if (typeof value === 'number' && typeof maxValue === 'number' && value > maxValue) say(`above ${maxValue}`);
  return problems;
}

/**
 * Evaluates a module call's `params` and checks them against the module's parameter declarations: unknown names,
 * missing required parameters, types and decorators. Returns the values the module receives (defaults included).
 */
export function moduleCall(
  caller: Scope,
  moduleName: string,
  target: BicepFile,
): { params: Record<string, Value>; problems: string[] } {
  const file = caller.file ?? fail(target.root, caller, 'moduleCall needs the calling file');
  const module = file.modules.get(moduleName) ?? fail(file.root, caller, `no module ${moduleName}`);
  const paramsNode = objectProperty(module.body, 'params');
  const given = paramsNode ? (evaluate(paramsNode, caller) as Record<string, Value>) : {};
  const problems: string[] = [];
  const targetScope: Scope = { ...caller, file: target, params: given, placeholders: {} };
  for (const name of Object.keys(given)) {
    if (!target.params.has(name)) problems.push(`${name}: ${target.path} declares no such parameter`);
  }
  const received: Record<string, Value> = {};
  for (const [name, param] of target.params) {
    if (name in given) received[name] = given[name] as Value;
    else if (param.defaultValue) received[name] = evaluate(param.defaultValue, targetScope);
    else {
      problems.push(`${name}: required by ${target.path} but not passed`);
      continue;
    }
    problems.push(...parameterProblems(param, received[name] as Value, targetScope));
  }
  return { params: received, problems };
}
