// Reference strings: "Patient/1", "Patient/1/_history/2", "https://elsewhere.example/fhir/Patient/1".

const REFERENCE = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

/** Splits a reference string into type and id; absolute URLs keep their last two segments. */
export function parseReference(reference: string): { type: string; id: string } | undefined {
  const m = REFERENCE.exec(reference);
  return m ? { type: m[1], id: m[2] } : undefined;
}
