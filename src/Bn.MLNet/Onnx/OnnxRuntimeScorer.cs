using Bn.MLNet.Networks;
using Microsoft.ML.OnnxRuntime;

namespace Bn.MLNet.Onnx;

/// <summary>
/// Scores a network with ONNX Runtime on the CPU: the graph <see cref="NetworkOnnxExporter"/> writes for it (test-time
/// flip averaging included), run in one <see cref="InferenceSession"/> per network. Inputs and outputs are bound to the
/// caller's managed buffers, so a batch is scored without copies. Thread-safe: ONNX Runtime allows concurrent runs of one
/// session.
/// </summary>
internal sealed class OnnxRuntimeScorer : IDisposable
{
    private const string FeatureName = "features";
    private const string ScoreName = "score";
    private const string ProbabilityName = "probability";
    private const string EmbeddingName = "embedding";

    private readonly InferenceSession _session;
    private readonly NetworkTask _task;
    private readonly int _featureLength;
    private readonly int _classCount;
    private readonly int _embeddingSize;

    private OnnxRuntimeScorer(InferenceSession session, NetworkArchitecture architecture, int embeddingSize)
    {
        _session = session;
        _task = architecture.Task;
        _featureLength = architecture.InputLength;
        _classCount = architecture.ClassCount;
        _embeddingSize = embeddingSize;
    }

    /// <summary>A session for <paramref name="network"/> (eval mode) with <paramref name="threads"/> intra-op threads.</summary>
    /// <exception cref="OnnxRuntimeException">ONNX Runtime refused the graph or the session options.</exception>
    public static OnnxRuntimeScorer Create(BatchNormCnnNetwork network, bool flipAveraging, int threads)
    {
        var settings = new OnnxExportSettings(FeatureName, ScoreName, EmbeddingName, "predicted_index", [], flipAveraging,
            network.Architecture.Task, ProbabilityName, "predicted_label");
        byte[] model = NetworkOnnxExporter.Export(network, settings);
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,

            // ONNX Runtime's memory pattern plans one block per input shape and keeps it: scoring batches of 256, the last
            // partial batch and a second, flip-averaged transformer held about 200 MB more at the peak of a train run
            // (886 against 686 MB), for no measurable speed (without it Transform ran at 1.01x and 0.97x the rows/s of ONNX
            // Runtime's own batches, 2 and 1 threads).
            EnableMemoryPattern = false,
        };
        return new OnnxRuntimeScorer(new InferenceSession(model, options), network.Architecture, network.EmbeddingSize);
    }

    /// <summary>
    /// Scores rows <paramref name="start"/> to <paramref name="start"/> + <paramref name="rows"/> − 1 of
    /// <paramref name="features"/> (row-major) into the same rows of <paramref name="scores"/>, in the layout of the
    /// libtorch path (multiclass: K probabilities per row; binary: the logit and its probability; regression: the
    /// prediction), and of <paramref name="embedding"/> (E values per row); a null buffer is not computed.
    /// </summary>
    public void Score(float[] features, int start, int rows, float[]? scores, float[]? embedding)
    {
        var names = new List<string>(3);
        var outputs = new List<OrtValue>(3);
        float[]? logit = null, probability = null;
        using var input = Tensor(features, start, rows, _featureLength);
        try
        {
            if (scores is not null && _task == NetworkTask.BinaryClassification)
            {
                logit = new float[rows];
                probability = new float[rows];
                Bind(ScoreName, Tensor(logit, 0, rows, 0));
                Bind(ProbabilityName, Tensor(probability, 0, rows, 0));
            }
            else if (scores is not null)
            {
                Bind(ScoreName, Tensor(scores, start, rows, _task == NetworkTask.MulticlassClassification ? _classCount : 0));
            }

            if (embedding is not null)
                Bind(EmbeddingName, Tensor(embedding, start, rows, _embeddingSize));
            using var run = new RunOptions();
            _session.Run(run, [FeatureName], [input], names, outputs);
        }
        finally
        {
            foreach (OrtValue value in outputs)
                value.Dispose();
        }

        if (logit is not null)
        {
            for (int i = 0; i < rows; i++)
            {
                scores![2 * (start + i)] = logit[i];
                scores[(2 * (start + i)) + 1] = probability![i];
            }
        }

        void Bind(string name, OrtValue value)
        {
            names.Add(name);
            outputs.Add(value);
        }
    }

    /// <summary>An ONNX Runtime tensor over rows <paramref name="start"/>… of <paramref name="buffer"/>: [rows, width], or [rows] when the width is 0.</summary>
    private static OrtValue Tensor(float[] buffer, int start, int rows, int width) =>
        OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            buffer.AsMemory(start * Math.Max(width, 1), rows * Math.Max(width, 1)), width == 0 ? [rows] : [rows, width]);

    public void Dispose() => _session.Dispose();
}
