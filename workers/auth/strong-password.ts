import { ApiError } from "../errors.ts";
import { passwordWeakness } from "./password-policy.ts";

/** Refuses a weak password (password-policy.ts) with 400 `weak_password`, saying why in `details.reason`. */
export async function assertStrongPassword(password: string, email: string): Promise<void> {
  const weak = await passwordWeakness(password, email);
  if (weak) throw new ApiError(400, "weak_password", `choose another password: ${weak.words}`, { reason: weak.reason });
}
