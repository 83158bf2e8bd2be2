// Entry point of the workflow bundle (workers pass `workflowsPath: require.resolve('<dist>/workflows')`).
export { runPipeline } from './engine/interpreter';
export { scatterBatch } from './engine/scatter-batch';
