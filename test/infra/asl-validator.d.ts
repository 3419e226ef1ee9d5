/** Types for asl-validator 4, which ships none (its API: README "In your code"). */
declare module 'asl-validator' {
  interface ValidationOptions {
    readonly checkPaths: boolean;
    readonly checkArn: boolean;
  }
  interface StateMachineError {
    'Error code': string;
    Message: string;
  }
  interface ValidationResult {
    isValid: boolean;
    errors: StateMachineError[];
    errorsText(separator?: string): string;
  }
  function validator(definition: unknown, options?: ValidationOptions): ValidationResult;
  export = validator;
}
