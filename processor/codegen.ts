/** The generator of straight-line functions lives in common/ (the contract's validators use it too). */
export { generate, ident } from '../common/codegen.js';
