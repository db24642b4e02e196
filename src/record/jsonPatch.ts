// A JSON Patch (RFC 6902) applied to a stored resource, with its problems said in an integrator's words.
// fast-json-patch names them by code (OPERATION_PATH_UNRESOLVABLE); the answer says which operation, what
// it asked and what to change. A patch that is malformed whatever it is applied to is a 400; one that is
// well formed but cannot apply to this resource as it stands (nothing at its path, a failed test) a 422.
import jsonpatch from 'fast-json-patch';
import { badRequest, unprocessable, type FhirError } from './outcome.ts';

type PatchProblem = jsonpatch.JsonPatchError['name'];

/** What each problem means, and whether the patch itself is malformed (true) or only cannot apply here. */
const PROBLEMS: Record<PatchProblem, [malformed: boolean, says: string]> = {
  SEQUENCE_NOT_AN_ARRAY: [true, 'a JSON Patch body is an array of operations'],
  OPERATION_NOT_AN_OBJECT: [true, 'each operation is an object such as {"op": "replace", "path": "/gender", "value": "female"}'],
  OPERATION_OP_INVALID: [true, 'op must be add, remove, replace, move, copy or test'],
  OPERATION_PATH_INVALID: [true, 'path must be a JSON Pointer such as /name/0/family'],
  OPERATION_FROM_REQUIRED: [true, 'move and copy need a from (a JSON Pointer)'],
  OPERATION_VALUE_REQUIRED: [true, 'add, replace and test need a value'],
  OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED: [true, 'the value must be plain JSON'],
  OPERATION_PATH_ILLEGAL_ARRAY_INDEX: [true, 'an array index in the path must be a whole number, or - for the end'],
  OPERATION_PATH_CANNOT_ADD: [false, 'there is nothing at the path\'s parent to add to'],
  OPERATION_PATH_UNRESOLVABLE: [false, 'there is nothing at that path'],
  OPERATION_FROM_UNRESOLVABLE: [false, 'there is nothing at its from'],
  OPERATION_VALUE_OUT_OF_BOUNDS: [false, 'the array index is beyond the end of the array'],
  TEST_OPERATION_FAILED: [false, 'the value at that path is not the one the test gives, so nothing was changed'],
};

/** "operation 2 (replace /name/0/family)", or as much of it as the operation has. */
function described(index: number | undefined, operation: unknown): string {
  const at = index === undefined ? 'the patch' : `operation ${index}`;
  if (!operation || typeof operation !== 'object') return at;
  const { op, path } = operation as { op?: unknown; path?: unknown };
  const parts = [op, path].filter((p): p is string => typeof p === 'string').map((p) => p.slice(0, 100));
  return parts.length ? `${at} (${parts.join(' ')})` : at;
}

function patchError(err: jsonpatch.JsonPatchError, target: string): FhirError {
  const [malformed, says] = PROBLEMS[err.name] ?? [false, err.message];
  const diagnostics = `JSON Patch to ${target} refused at ${described(err.index, err.operation)}: ${says}.`;
  return malformed ? badRequest(diagnostics) : unprocessable([{ severity: 'error', code: 'processing', diagnostics }]);
}

/**
 * The resource with the patch applied (`doc` is changed in place); throws a FhirError naming the operation
 * at fault. Applied one operation at a time: the library's own validation reports every failure as
 * operation 0.
 */
export function applyJsonPatch(doc: Record<string, unknown>, patch: unknown, target: string): Record<string, unknown> {
  if (!Array.isArray(patch)) throw badRequest('A JSON Patch body must be an array of operations.');
  let patched = doc;
  patch.forEach((operation, index) => {
    try {
      patched = jsonpatch.applyOperation(patched, operation as jsonpatch.Operation, true, true, true, index).newDocument;
    } catch (err) {
      if (err instanceof jsonpatch.JsonPatchError) throw patchError(Object.assign(err, { index, operation }), target);
      // a plain TypeError for paths through __proto__ or constructor
      throw unprocessable([{ severity: 'error', code: 'processing', diagnostics: `JSON Patch to ${target} refused at ${described(index, operation)}: ${(err as Error).message}` }]);
    }
  });
  return patched;
}
