// Moved to tools/shoal-cluster.ts (bench/ and the chaos runner use it too); kept so tests importing it here keep working.
export * from '../../tools/shoal-cluster.js';
