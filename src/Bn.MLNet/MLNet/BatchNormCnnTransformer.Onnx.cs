using System.Globalization;
using System.Text.Json;
using Bn.MLNet.Onnx;

namespace Bn.MLNet;

/// <summary>ONNX export of the scoring network.</summary>
public sealed partial class BatchNormCnnTransformer
{
    /// <summary>The ONNX operator set (default domain) that <see cref="SaveAsOnnx(Stream)"/> writes: 17, with IR version 8.</summary>
    public const int OnnxOpsetVersion = OnnxGraph.OpsetVersion;

    /// <summary>
    /// Name of the extra ONNX output holding the 0-based index of the most probable class (int64 [N]):
    /// <see cref="PredictedLabelColumnName"/> followed by "Index", for example "PredictedLabelIndex".
    /// </summary>
    public string OnnxPredictedIndexName => PredictedLabelColumnName + "Index";

    /// <summary>
    /// Writes the scoring network as an ONNX model (opset <see cref="OnnxOpsetVersion"/>, IR version 8), so that it scores
    /// without TorchSharp or libtorch: in ONNX Runtime, or in ML.NET with <c>mlContext.Transforms.ApplyOnnxModel</c>.
    /// </summary>
    /// <remarks>
    /// <para>The graph:</para>
    /// <list type="bullet">
    /// <item><description>Input <see cref="FeatureColumnName"/>: float32 [N, C·H·W] with a symbolic batch dimension "N" (one
    /// call scores any number of rows). A feature column of Byte or Double must be converted to Single first
    /// (<c>ConvertType</c>).</description></item>
    /// <item><description>Reshape to [N, C, H, W] and the network's input standardization (x − mean[c]) / std[c].</description></item>
    /// <item><description>Each convolution stage: Conv (3×3, padding 1) → BatchNormalization with the inference statistics (for
    /// <see cref="BatchNormInferenceMode.Folded"/> the batch normalization is already folded into the Conv) or group/layer
    /// normalization as Reshape/ReduceMean/Sub/Mul/Add/Sqrt/Div → Relu/Sigmoid/Tanh; MaxPool 2×2 after a pooled stage.
    /// Then Flatten and, for each hidden layer, Gemm → normalization → activation (dropout is the identity at inference).</description></item>
    /// <item><description>Output <see cref="ScoreColumnName"/>: multiclass: float32 [N, K], Softmax of the logits, the same
    /// probabilities as <see cref="Transform"/>'s score column; binary: float32 [N], the logit, with outputs
    /// <see cref="ProbabilityColumnName"/> (float32 [N], its Sigmoid) and <see cref="PredictedLabelColumnName"/> (bool [N],
    /// score &gt; 0); regression: float32 [N], the prediction in the label's units. Tabular networks standardize each
    /// feature before the reshape.</description></item>
    /// <item><description>With <see cref="TestTimeFlipAveraging"/>: after the standardization, Slice (step −1 on the width
    /// axis) mirrors the images and Concat stacks images and mirrors (2N rows) for one pass through the layers; the score is
    /// ReduceMean of the two halves' Softmax, the embedding the first half's, and the predicted index the ArgMax of the
    /// averaged score, as in <see cref="Transform"/>.</description></item>
    /// <item><description>Output <see cref="EmbeddingColumnName"/> (only when set): float32 [N, E], the last hidden layer's
    /// activations.</description></item>
    /// <item><description>Multiclass: output <see cref="OnnxPredictedIndexName"/>: int64 [N], ArgMax of the logits, the 0-based index into
    /// <see cref="ClassNames"/> (ML.NET's PredictedLabel key is this index + 1).</description></item>
    /// <item><description>metadata_props: <c>bn.mlnet.class_names</c> (JSON array of <see cref="ClassNames"/>),
    /// <c>bn.mlnet.architecture</c> (the <see cref="Networks.NetworkArchitecture"/> JSON), <c>bn.mlnet.inference_mode</c>,
    /// <c>bn.mlnet.input_shape</c> ("C,H,W"), <c>bn.mlnet.test_time_flip_averaging</c> ("true" or "false"), <c>bn.mlnet.task</c> and the column names (<c>bn.mlnet.feature_column</c>,
    /// <c>bn.mlnet.score_column</c>, <c>bn.mlnet.embedding_column</c>, <c>bn.mlnet.predicted_index_column</c>).</description></item>
    /// </list>
    /// <para>The stream receives the whole model in one write once it is complete; it is left open.</para>
    /// </remarks>
    /// <param name="stream">A writable stream.</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    /// <exception cref="ArgumentException">The stream is not writable.</exception>
    /// <exception cref="IOException">Writing to the stream failed.</exception>
    /// <exception cref="NotSupportedException">A layer of the network has no ONNX translation, or a column name equals another
    /// or an internal value name of the graph (the message names it).</exception>
    public void SaveAsOnnx(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream for the ONNX model is not writable.", nameof(stream));
        }

        byte[] model = ExportOnnx();
        try
        {
            stream.Write(model);
            stream.Flush();
        }
        catch (Exception ex) when (ex is IOException or NotSupportedException or ObjectDisposedException)
        {
            throw new IOException($"Writing the ONNX model ({model.Length} bytes) to the stream failed: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Writes the scoring network as an ONNX model file (see <see cref="SaveAsOnnx(Stream)"/> for the graph). The model is
    /// written to a temporary file in the same folder and then moved over <paramref name="path"/>, so a failure never
    /// leaves a partial file behind.
    /// </summary>
    /// <param name="path">The file to create or replace, for example "model.onnx".</param>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    /// <exception cref="ArgumentException">The path is empty.</exception>
    /// <exception cref="IOException">The file cannot be written (the message names it; an access error is the inner exception).</exception>
    /// <exception cref="NotSupportedException">As for <see cref="SaveAsOnnx(Stream)"/>; nothing is written.</exception>
    public void SaveAsOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ObjectDisposedException.ThrowIf(_disposed, this);
        byte[] model = ExportOnnx();
        string full = Path.GetFullPath(path);
        string temp = full + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        try
        {
            File.WriteAllBytes(temp, model);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new IOException($"Cannot write the ONNX model to '{full}': {ex.Message}", ex);
        }
    }

    private byte[] ExportOnnx()
    {
        var metadata = new List<KeyValuePair<string, string>>
        {
            new("bn.mlnet.class_names", JsonSerializer.Serialize(ClassNames)),
            new("bn.mlnet.architecture", _network.Architecture.ToJson()),
            new("bn.mlnet.inference_mode", InferenceMode.ToString()),
            new("bn.mlnet.input_shape", string.Create(CultureInfo.InvariantCulture, $"{Architecture.InputChannels},{Architecture.InputHeight},{Architecture.InputWidth}")),
            new("bn.mlnet.feature_column", FeatureColumnName),
            new("bn.mlnet.score_column", ScoreColumnName),
            new("bn.mlnet.predicted_index_column", OnnxPredictedIndexName),
            new("bn.mlnet.test_time_flip_averaging", TestTimeFlipAveraging ? "true" : "false"),
        };
        if (EmbeddingColumnName is not null)
        {
            metadata.Add(new("bn.mlnet.embedding_column", EmbeddingColumnName));
        }

        metadata.Add(new("bn.mlnet.task", Architecture.Task.ToString()));
        var settings = new OnnxExportSettings(FeatureColumnName, ScoreColumnName, EmbeddingColumnName, OnnxPredictedIndexName, metadata, TestTimeFlipAveraging,
            Architecture.Task, _columns.ProbabilityColumnName, PredictedLabelColumnName);
        return NetworkOnnxExporter.Export(_scoringNetwork, settings);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // The temporary file could not be removed; the original error matters more.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }
}
