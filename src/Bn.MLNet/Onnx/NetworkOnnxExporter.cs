using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;
using static Bn.MLNet.Onnx.OnnxAttribute;

namespace Bn.MLNet.Onnx;

/// <summary>
/// Translates an eval-mode <see cref="BatchNormCnnNetwork"/> into an ONNX graph (opset <see cref="OnnxGraph.OpsetVersion"/>), layer by
/// layer, dispatching on each module's type: Conv2d → Conv; batch normalization (any module with running_mean and
/// running_var buffers, ours or TorchSharp's) → BatchNormalization with the running statistics; group normalization
/// and layer normalization → Reshape/ReduceMean/Sub/Mul/Add/Sqrt/Div; ReLU/Sigmoid/Tanh → Relu/Sigmoid/Tanh;
/// MaxPool2d → MaxPool; Dropout → nothing (identity in eval mode); Linear → Gemm.
/// </summary>
internal static class NetworkOnnxExporter
{
    private const string Batch = "N";

    /// <summary>The serialized ONNX model of <paramref name="network"/>.</summary>
    /// <exception cref="NotSupportedException">A layer has no ONNX translation (named in the message).</exception>
    public static byte[] Export(BatchNormCnnNetwork network, OnnxExportSettings settings)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(settings);
        NetworkArchitecture a = network.Architecture;
        var graph = new OnnxGraph();
        using DisposeScope scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();

        graph.Input(settings.FeatureName, OnnxGraph.Float32, Batch, a.InputLength);
        string x = Standardize(graph, settings.FeatureName, network, a);
        if (settings.FlipAveraging)
        {
            x = WithMirrors(graph, x);
        }

        Dictionary<string, Module> children = network.named_children().ToDictionary(c => c.name, c => (Module)c.module);
        x = ExportList(graph, children["features"], "features", x, rank: 4, a);
        x = graph.Node("Flatten", new[] { x }, "flatten", Int("axis", 1));
        string embedding = ExportList(graph, children["classifier"], "classifier", x, rank: 2, a);
        if (settings.EmbeddingName is { } embeddingName)
        {
            string own = settings.FlipAveraging ? FirstHalf(graph, embedding, "embedding", network.EmbeddingSize) : embedding;
            graph.Node("Identity", new[] { own }, embeddingName);
            graph.Output(embeddingName, OnnxGraph.Float32, Batch, network.EmbeddingSize);
        }

        string head = Gemm(graph, children["logits"], "logits", embedding);
        switch (a.Task)
        {
            case NetworkTask.BinaryClassification:
                BinaryOutputs(graph, head, settings);
                break;
            case NetworkTask.Regression:
                RegressionOutput(graph, head, settings, network);
                break;
            default:
                MulticlassOutputs(graph, head, settings, a);
                break;
        }

        foreach ((string key, string value) in settings.Metadata)
        {
            graph.Metadata(key, value);
        }

        string version = typeof(NetworkOnnxExporter).Assembly.GetName().Version?.ToString() ?? "0";
        return graph.ToModel("BatchNormCnnNetwork", version, $"Bn.MLNet BatchNormCnnNetwork: {a.ToJson()}");
    }

    /// <summary>
    /// The input as N×C×H×W, standardized: per channel after the reshape ((x − mean[c]) / std[c] with [1, C, 1, 1]
    /// constants), or per feature before it ([1, C·H·W] constants) for a network that standardizes per feature.
    /// </summary>
    private static string Standardize(OnnxGraph graph, string input, BatchNormCnnNetwork network, NetworkArchitecture a)
    {
        long[] dims = a.StandardizesPerFeature ? new long[] { 1, a.InputLength } : new long[] { 1, a.InputChannels, 1, 1 };
        string x = a.StandardizesPerFeature ? input
            : graph.Node("Reshape", new[] { input, graph.Int64Constant("input_shape", new long[] { -1, a.InputChannels, a.InputHeight, a.InputWidth }) }, "input_nchw");
        x = graph.Node("Sub", new[] { x, graph.Constant("input_mean", dims, network.InputMean) }, "input_centered");
        x = graph.Node("Div", new[] { x, graph.Constant("input_std", dims, network.InputStd) }, "input_standardized");
        return a.StandardizesPerFeature
            ? graph.Node("Reshape", new[] { x, graph.Int64Constant("input_shape", new long[] { -1, a.InputChannels, a.InputHeight, a.InputWidth }) }, "input_nchw")
            : x;
    }

    /// <summary>Multiclass: Softmax probabilities (flip-averaged when asked) and the ArgMax index.</summary>
    private static void MulticlassOutputs(OnnxGraph graph, string logits, OnnxExportSettings settings, NetworkArchitecture a)
    {
        string scoreSource = logits;
        if (settings.FlipAveraging)
        {
            string probabilities = graph.Node("Softmax", new[] { logits }, "flip/probabilities", Int("axis", 1));
            string paired = graph.Node("Reshape", new[] { probabilities, graph.Int64Constant("flip/pair_shape", new long[] { 2, -1, a.ClassCount }) }, "flip/paired");
            graph.Node("ReduceMean", new[] { paired }, settings.ScoreName, Ints("axes", 0), Int("keepdims", 0));
            scoreSource = settings.ScoreName;
        }
        else
        {
            graph.Node("Softmax", new[] { logits }, settings.ScoreName, Int("axis", 1));
        }

        graph.Output(settings.ScoreName, OnnxGraph.Float32, Batch, a.ClassCount);
        graph.Node("ArgMax", new[] { scoreSource }, settings.PredictedIndexName, Int("axis", 1), Int("keepdims", 0));
        graph.Output(settings.PredictedIndexName, OnnxGraph.Int64Type, Batch);
    }

    /// <summary>Binary: the logit as Score [N], its Sigmoid as Probability [N], Score &gt; 0 as the Boolean predicted label [N].</summary>
    private static void BinaryOutputs(OnnxGraph graph, string logit, OnnxExportSettings settings)
    {
        string score = graph.Node("Reshape", new[] { logit, graph.Int64Constant("score_shape", new long[] { -1 }) }, settings.ScoreName);
        graph.Output(score, OnnxGraph.Float32, Batch);
        graph.Node("Sigmoid", new[] { score }, settings.ProbabilityName!);
        graph.Output(settings.ProbabilityName!, OnnxGraph.Float32, Batch);
        graph.Node("Greater", new[] { score, graph.Constant("zero", Array.Empty<long>(), new[] { 0f }) }, settings.PredictedLabelName!);
        graph.Output(settings.PredictedLabelName!, OnnxGraph.Bool, Batch);
    }

    /// <summary>Regression: output·std + mean, the prediction in the label's units, as Score [N].</summary>
    private static void RegressionOutput(OnnxGraph graph, string output, OnnxExportSettings settings, BatchNormCnnNetwork network)
    {
        string scaled = graph.Node("Mul", new[] { output, graph.Constant("target_std", new long[] { 1 }, new[] { network.TargetStd }) }, "target_scaled");
        string shifted = graph.Node("Add", new[] { scaled, graph.Constant("target_mean", new long[] { 1 }, new[] { network.TargetMean }) }, "target_shifted");
        graph.Node("Reshape", new[] { shifted, graph.Int64Constant("score_shape", new long[] { -1 }) }, settings.ScoreName);
        graph.Output(settings.ScoreName, OnnxGraph.Float32, Batch);
    }

    /// <summary>
    /// Test-time flip averaging: the N×C×H×W images followed by their horizontal mirrors (Slice with step −1 on the width
    /// axis), 2N×C×H×W, so the network runs once over both.
    /// </summary>
    private static string WithMirrors(OnnxGraph graph, string x)
    {
        string[] sliceInputs =
        {
            x,
            graph.Int64Constant("flip/starts", new long[] { -1 }),
            graph.Int64Constant("flip/ends", new long[] { long.MinValue }),
            graph.Int64Constant("flip/axes", new long[] { 3 }),
            graph.Int64Constant("flip/steps", new long[] { -1 }),
        };
        string mirrored = graph.Node("Slice", sliceInputs, "flip/mirrored");
        return graph.Node("Concat", new[] { x, mirrored }, "flip/images_and_mirrors", Int("axis", 0));
    }

    /// <summary>The first N rows (the un-flipped images) of a 2N×<paramref name="width"/> value laid out as <see cref="WithMirrors"/> builds it.</summary>
    private static string FirstHalf(OnnxGraph graph, string x, string name, long width)
    {
        string paired = graph.Node("Reshape", new[] { x, graph.Int64Constant($"flip/{name}_pair_shape", new long[] { 2, -1, width }) }, $"flip/{name}_paired");
        string first = graph.Node("Gather", new[] { paired, graph.Int64Constant($"flip/{name}_first_index", new long[] { 0 }) }, $"flip/{name}_first", Int("axis", 0));
        return graph.Node("Reshape", new[] { first, graph.Int64Constant($"flip/{name}_rows_shape", new long[] { -1, width }) }, $"flip/{name}_first_half");
    }

    private static string ExportList(OnnxGraph graph, Module list, string prefix, string x, int rank, NetworkArchitecture a)
    {
        foreach ((string name, Module child) in list.named_children())
        {
            x = ExportLayer(graph, child, $"{prefix}.{name}", x, rank, a);
        }

        return x;
    }

    private static string ExportLayer(OnnxGraph graph, Module layer, string path, string x, int rank, NetworkArchitecture a)
    {
        switch (layer)
        {
            case Conv2d:
                return Conv(graph, layer, path, x);
            case Linear:
                return Gemm(graph, layer, path, x);
            case GroupNormLayer g:
                return GroupNorm(graph, layer, path, x, rank, g.Groups, g.Eps);
            case LayerNorm:
                return GroupNorm(graph, layer, path, x, rank, groups: 1, a.BatchNormEps);
            case ReLU:
                return graph.Node("Relu", new[] { x }, path);
            case Sigmoid:
                return graph.Node("Sigmoid", new[] { x }, path);
            case Tanh:
                return graph.Node("Tanh", new[] { x }, path);
            case MaxPool2d:
                // BatchNormCnnNetwork pools with MaxPool2d(2, 2): 2×2 windows, stride 2, no padding, floor rounding.
                return graph.Node("MaxPool", new[] { x }, path, Ints("kernel_shape", 2, 2), Ints("strides", 2, 2));
            case Dropout or SeededDropout:
                return x;
        }

        if (IsBatchNorm(layer))
        {
            double eps = layer is BatchNormBase ours ? ours.Eps : a.BatchNormEps;
            return BatchNorm(graph, layer, path, x, eps);
        }

        throw new NotSupportedException(
            $"ONNX export: layer '{path}' of type {layer.GetType().Name} (Normalization = {a.Normalization}, Activation = {a.Activation}) has no ONNX translation.");
    }

    /// <summary>Batch normalization at inference: any layer holding running statistics (ours, TorchSharp's, or a subclass of ours).</summary>
    private static bool IsBatchNorm(Module layer) =>
        layer is BatchNormBase ||
        (TryTensor(layer, "running_mean") is not null && TryTensor(layer, "running_var") is not null);

    private static string Conv(OnnxGraph graph, Module conv, string path, string x)
    {
        Tensor weight = RequireTensor(conv, "weight", path);
        long k = weight.shape[2];
        if (weight.shape[3] != k || k % 2 == 0)
        {
            throw new NotSupportedException($"ONNX export: convolution '{path}' has a {weight.shape[2]}×{weight.shape[3]} kernel; BatchNormCnnNetwork's same-size convolutions have odd square kernels.");
        }

        var inputs = new List<string> { x, Weights(graph, $"{path}.weight", weight) };
        if (TryTensor(conv, "bias") is { } bias)
        {
            inputs.Add(Weights(graph, $"{path}.bias", bias));
        }

        // BatchNormCnnNetwork's convolutions: stride 1, padding k/2 on every side (same size output).
        long p = k / 2;
        return graph.Node("Conv", inputs.ToArray(), path, Ints("kernel_shape", k, k), Ints("pads", p, p, p, p), Ints("strides", 1, 1));
    }

    private static string Gemm(OnnxGraph graph, Module linear, string path, string x)
    {
        var inputs = new List<string> { x, Weights(graph, $"{path}.weight", RequireTensor(linear, "weight", path)) };
        if (TryTensor(linear, "bias") is { } bias)
        {
            inputs.Add(Weights(graph, $"{path}.bias", bias));
        }

        return graph.Node("Gemm", inputs.ToArray(), path, Int("transB", 1));
    }

    private static string BatchNorm(OnnxGraph graph, Module bn, string path, string x, double eps)
    {
        Tensor mean = RequireTensor(bn, "running_mean", path);
        Tensor variance = RequireTensor(bn, "running_var", path);
        long c = mean.shape[0];
        string scale = TryTensor(bn, "weight") is { } w ? Weights(graph, $"{path}.weight", w) : graph.Constant($"{path}.weight", new[] { c }, Ones(c, 1f));
        string shift = TryTensor(bn, "bias") is { } b ? Weights(graph, $"{path}.bias", b) : graph.Constant($"{path}.bias", new[] { c }, Ones(c, 0f));
        string[] inputs = { x, scale, shift, Weights(graph, $"{path}.running_mean", mean), Weights(graph, $"{path}.running_var", variance) };
        return graph.Node("BatchNormalization", inputs, path, FloatValue("epsilon", (float)eps));
    }

    /// <summary>
    /// Group normalization (layer normalization with one group) of an N×C×H×W (<paramref name="rank"/> 4) or N×C input:
    /// statistics per row and group over the group's channels and positions, biased variance, then a per-channel affine.
    /// </summary>
    private static string GroupNorm(OnnxGraph graph, Module norm, string path, string x, int rank, long groups, double eps)
    {
        Tensor weight = RequireTensor(norm, "weight", path);
        Tensor bias = RequireTensor(norm, "bias", path);
        long c = weight.shape[0];
        if (weight.dim() != 1 || c % groups != 0)
        {
            throw new NotSupportedException($"ONNX export: normalization '{path}' has weight shape [{string.Join(", ", weight.shape)}] for {groups} groups.");
        }

        string grouped = graph.Node("Reshape", new[] { x, graph.Int64Constant($"{path}/group_shape", new long[] { 0, groups, -1 }) }, $"{path}/grouped");
        var mean = graph.Node("ReduceMean", new[] { grouped }, $"{path}/mean", Ints("axes", 2), Int("keepdims", 1));
        var centered = graph.Node("Sub", new[] { grouped, mean }, $"{path}/centered");
        var squared = graph.Node("Mul", new[] { centered, centered }, $"{path}/squared");
        var variance = graph.Node("ReduceMean", new[] { squared }, $"{path}/variance", Ints("axes", 2), Int("keepdims", 1));
        var shifted = graph.Node("Add", new[] { variance, graph.Constant($"{path}/eps", Array.Empty<long>(), new[] { (float)eps }) }, $"{path}/variance_eps");
        var std = graph.Node("Sqrt", new[] { shifted }, $"{path}/std");
        var normalized = graph.Node("Div", new[] { centered, std }, $"{path}/normalized");
        var shape = graph.Node("Shape", new[] { x }, $"{path}/input_shape");
        var restored = graph.Node("Reshape", new[] { normalized, shape }, $"{path}/restored");
        long[] affineDims = rank == 4 ? new[] { c, 1L, 1L } : new[] { c };
        var scaled = graph.Node("Mul", new[] { restored, graph.Constant($"{path}.weight", affineDims, Floats(weight)) }, $"{path}/scaled");
        return graph.Node("Add", new[] { scaled, graph.Constant($"{path}.bias", affineDims, Floats(bias)) }, path);
    }

    private static string Weights(OnnxGraph graph, string name, Tensor t) => graph.Constant(name, t.shape, Floats(t));

    private static float[] Floats(Tensor t) => t.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();

    private static float[] Ones(long count, float value)
    {
        var v = new float[count];
        Array.Fill(v, value);
        return v;
    }

    private static Tensor RequireTensor(Module module, string name, string path) =>
        TryTensor(module, name) ?? throw new NotSupportedException($"ONNX export: layer '{path}' ({module.GetType().Name}) has no tensor '{name}'.");

    private static Tensor? TryTensor(Module module, string name)
    {
        foreach ((string n, Parameter p) in module.named_parameters(recurse: false))
        {
            if (n == name)
            {
                return p;
            }
        }

        foreach ((string n, Tensor b) in module.named_buffers(recurse: false))
        {
            if (n == name)
            {
                return b;
            }
        }

        return null;
    }
}
