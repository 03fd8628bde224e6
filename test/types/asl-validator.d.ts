// asl-validator 4 ships JavaScript without type declarations; this is the one call the tests use.
declare module "asl-validator" {
  interface AslValidationResult {
    isValid: boolean;
    errors: Array<{ message?: string; [k: string]: unknown }>;
  }
  export default function validator(
    definition: object,
    options?: Record<string, unknown>,
  ): AslValidationResult;
}
