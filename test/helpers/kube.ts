// Moved to tools/kube.ts (bench/ and the chaos runner use it too); kept so tests importing it here keep working.
export * from '../../tools/kube.js';
