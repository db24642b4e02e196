// The FHIR R4 structure definitions compiled, once per process, into lookup tables for the validator's walk.
//
// Every resource type, complex data type and backbone element becomes a TypeNode: JSON property name → Prop
// (choice elements expanded: Observation.value[x] gives valueQuantity, valueString, …), plus the required
// elements, the choice groups and the few invariants the record checks. Elements defined by contentReference
// (Questionnaire.item.item → #Questionnaire.item) point at the node of the element they reuse, so recursive
// structures need no special case. Source: snapshot.element of profiles-types.json and profiles-resources.json.
import { officialDefinitions } from '../definitions.ts';
import { definitions } from '../definitions.ts';
import { codeRule, type CodeRule } from './bindings.ts';
import { INVARIANTS } from './invariants.ts';
import { primitiveTypes, type PrimitiveType } from './primitives.ts';

export type Kind = 'primitive' | 'complex' | 'resource';

export interface ChoiceGroup {
  /** "value" for value[x]. */
  base: string;
  /** This group's bit in a per-object mask (a type has at most a handful of choice elements). */
  bit: number;
  /** The JSON names of its variants: valueQuantity, valueString, … */
  variants: string[];
}

export interface Prop {
  /** JSON property name. */
  name: string;
  /** Name of the sibling that carries a primitive's id and extensions: "_" + name. */
  ext: string;
  kind: Kind;
  /** FHIR type code, or for backbone elements the element's path: for messages. */
  type: string;
  /** Whether FHIR JSON writes the element as an array (its base definition repeats). */
  array: boolean;
  min: number;
  /** Maximum number of values; Infinity for "*". */
  max: number;
  primitive?: PrimitiveType;
  /** Required binding on a code element, when its codes can be listed. */
  codes?: CodeRule;
  /** complex: the node describing the value. */
  node?: TypeNode;
  choice?: ChoiceGroup;
}

export interface Invariant {
  key: string;
  human: string;
  holds(o: Record<string, unknown>): boolean;
}

export interface TypeNode {
  /** Type name (Patient, HumanName) or backbone element path (Patient.contact). */
  name: string;
  isResource: boolean;
  props: Map<string, Prop>;
  required: Prop[];
  requiredChoices: ChoiceGroup[];
  choices: ChoiceGroup[];
  invariants: Invariant[];
}

interface RawType {
  code: string;
  extension?: { url: string; valueUrl?: string }[];
}
interface RawElement {
  path: string;
  min?: number;
  max?: string;
  base?: { max?: string };
  type?: RawType[];
  contentReference?: string;
  binding?: { strength?: string; valueSet?: string };
  constraint?: { key: string; severity?: string; human?: string }[];
  sliceName?: string;
}
interface RawStructureDefinition {
  resourceType: string;
  name: string;
  kind?: string;
  derivation?: string;
  snapshot?: { element: RawElement[] };
}

const FHIR_TYPE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

let compiled: Map<string, TypeNode> | undefined;

/** The node for a resource or data type name (Patient, HumanName) or backbone path; undefined when unknown. */
export function typeNode(name: string): TypeNode | undefined {
  compiled ??= compileAll();
  return compiled.get(name);
}

/** Compiles every type at once (≈0.5 s, mostly parsing the 35 MB resource definitions), then drops the JSON. */
function compileAll(): Map<string, TypeNode> {
  const nodes = new Map<string, TypeNode>();
  const pending: [Prop, string][] = []; // complex props whose node is resolved once every type is compiled
  const primitives = primitiveTypes();
  const resourceTypes = definitions().resourceTypes;
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    const bundle = officialDefinitions(file) as { entry: { resource: RawStructureDefinition }[] };
    for (const { resource: sd } of bundle.entry) {
      if (sd.resourceType !== 'StructureDefinition' || !sd.snapshot || sd.derivation === 'constraint') continue;
      if (sd.kind !== 'resource' && sd.kind !== 'complex-type' && sd.kind !== 'primitive-type') continue;
      compileType(sd, nodes, pending, primitives, resourceTypes);
    }
  }
  for (const [prop, target] of pending) {
    const node = nodes.get(target);
    if (!node) throw new Error(`FHIR definitions: ${prop.name} refers to unknown type or element ${target}`);
    prop.node = node;
  }
  return nodes;
}

function compileType(
  sd: RawStructureDefinition,
  nodes: Map<string, TypeNode>,
  pending: [Prop, string][],
  primitives: Map<string, PrimitiveType>,
  resourceTypes: ReadonlySet<string>,
): void {
  const elements = sd.snapshot!.element.filter((e) => !e.sliceName);
  const rootPath = elements[0].path;
  // Paths are keyed by the type's name (a specialization's snapshot may be written against its base's path).
  const key = (path: string) => sd.name + path.slice(rootPath.length);
  const parentOf = (path: string) => path.slice(0, path.lastIndexOf('.'));
  const withChildren = new Set(elements.slice(1).map((e) => parentOf(e.path)));
  const isResource = sd.kind === 'resource';

  const newNode = (path: string, element: RawElement): TypeNode => {
    const node: TypeNode = {
      name: key(path),
      isResource: isResource && path === rootPath,
      props: new Map(),
      required: [],
      requiredChoices: [],
      choices: [],
      invariants: invariantsOf(element),
    };
    nodes.set(node.name, node);
    return node;
  };
  newNode(rootPath, elements[0]);

  for (const element of elements.slice(1)) {
    const path = element.path;
    const parent = nodes.get(key(parentOf(path)));
    if (!parent) throw new Error(`FHIR definitions: ${path} comes before its parent`);
    const max = element.max === '*' ? Infinity : Number(element.max ?? '1');
    if (max === 0) continue; // prohibited here: an unknown element
    if (isResource && parentOf(path) === rootPath && path.endsWith('.id')) continue; // a resource's id: checked by the caller
    const min = element.min ?? 0;
    const baseMax = element.base?.max ?? element.max ?? '1';
    const array = baseMax !== '1' && baseMax !== '0';
    const name = path.slice(path.lastIndexOf('.') + 1);

    if (element.contentReference) {
      const prop = addProp(parent, makeProp(name, 'complex', key(element.contentReference.slice(1)), array, min, max));
      pending.push([prop, prop.type]);
      continue;
    }
    if (withChildren.has(path)) {
      newNode(path, element);
      const prop = addProp(parent, makeProp(name, 'complex', key(path), array, min, max));
      pending.push([prop, prop.type]);
      continue;
    }

    const choice = name.endsWith('[x]');
    const base = choice ? name.slice(0, -3) : name;
    let group: ChoiceGroup | undefined;
    if (choice) {
      group = { base, bit: 1 << parent.choices.length, variants: [] };
      if (parent.choices.length >= 30) throw new Error(`FHIR definitions: too many choice elements in ${parent.name}`);
      parent.choices.push(group);
      if (min > 0) parent.requiredChoices.push(group);
    }
    for (const type of element.type ?? []) {
      const code = typeCode(type);
      const jsonName = choice ? base + code.charAt(0).toUpperCase() + code.slice(1) : base;
      // In a choice, the group is required, not each variant.
      const prop = makeProp(jsonName, 'complex', code, array, choice ? 0 : min, max);
      if (choice) {
        prop.choice = group;
        group!.variants.push(jsonName);
      }
      const primitive = primitives.get(code);
      if (primitive) {
        prop.kind = 'primitive';
        prop.primitive = primitive;
        if (code === 'code' && element.binding?.strength === 'required') prop.codes = codeRule(element.binding.valueSet);
      } else if (code === 'Resource' || code === 'DomainResource' || resourceTypes.has(code)) {
        prop.kind = 'resource';
      } else {
        pending.push([prop, code]);
      }
      addProp(parent, prop);
    }
  }
}

/** Every Prop gets the same fields in the same order, so the walk's property reads stay monomorphic. */
function makeProp(name: string, kind: Kind, type: string, array: boolean, min: number, max: number): Prop {
  return { name, ext: `_${name}`, kind, type, array, min, max, primitive: undefined, codes: undefined, node: undefined, choice: undefined };
}

function addProp(node: TypeNode, prop: Prop): Prop {
  if (node.props.has(prop.name)) throw new Error(`FHIR definitions: ${node.name}.${prop.name} is defined twice`);
  node.props.set(prop.name, prop);
  if (prop.min > 0 && !prop.choice) node.required.push(prop);
  return prop;
}

/** The FHIR type of an element type: System.String with a fhir-type extension (Element.id, Extension.url) is that type. */
function typeCode(type: RawType): string {
  if (!type.code.startsWith('http://hl7.org/fhirpath/System.')) return type.code;
  return type.extension?.find((x) => x.url === FHIR_TYPE_EXTENSION)?.valueUrl ?? 'string';
}

function invariantsOf(element: RawElement): Invariant[] {
  const out: Invariant[] = [];
  for (const c of element.constraint ?? []) {
    if (c.severity === 'error' && Object.hasOwn(INVARIANTS, c.key)) out.push({ key: c.key, human: c.human ?? c.key, holds: INVARIANTS[c.key] });
  }
  return out;
}
