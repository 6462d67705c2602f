namespace Bn.MLNet;

/// <summary>What computes the scores of a trained <see cref="BatchNormCnnTransformer"/>.</summary>
/// <remarks>
/// Both engines compute the same function: the network in eval mode (dropout off, normalization with its inference
/// statistics). Their scores differ only by float32 rounding (within 1e-5 on the tested models), and every output column
/// (score, probability, predicted label, embedding) comes from the chosen engine.
/// </remarks>
public enum ScoringEngine
{
    /// <summary>
    /// ONNX Runtime where it can score (the app references the <c>Microsoft.ML.OnnxRuntime</c> package, whose native
    /// library then loads, and the network is on the CPU), libtorch otherwise. The default: on a CPU ONNX Runtime scores
    /// this library's CNNs about 1.2 times as fast as libtorch in batches and 2 to 6 times as fast one row at a time.
    /// The choice is made at the first scoring and written to the <c>MLContext</c> log; <see cref="BatchNormCnnTransformer.ActiveScoringEngine"/> tells which it is.
    /// </summary>
    Automatic,

    /// <summary>libtorch (TorchSharp), on the device the network is on; batch normalization folded into the layer before it where it can be.</summary>
    LibTorch,

    /// <summary>
    /// ONNX Runtime on the CPU, running the graph that <see cref="BatchNormCnnTransformer.SaveAsOnnx(System.IO.Stream)"/>
    /// writes. Needs the <c>Microsoft.ML.OnnxRuntime</c> package in the app; without it (or for a network on a GPU) the
    /// transformer refuses to be created, naming the cause.
    /// </summary>
    OnnxRuntime,
}
