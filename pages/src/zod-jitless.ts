import { z } from "zod";

// zod probes for eval (`new Function`) when it builds an object schema, to compile its parser; the
// page's CSP forbids eval, and the probe, though caught, is reported as a violation on every load.
// Imported first by main.tsx: schemas built before this line would probe. (In Workers eval is off:
// zod runs the same way there.)
z.config({ jitless: true });
