// aws-local-stepfunctions 3 calls Promise.withResolvers, which Node 20 lacks.
import '../lambdas/local/polyfills';
