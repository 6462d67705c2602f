using System.Security.Cryptography;
using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// <see cref="BatchNormCnnOptions.InitialModel"/>: training that starts from a trained model. The model must have the
/// same input shape and body (everything of its architecture but the task and the class count); with the same task and
/// classes the whole network carries over and training continues, otherwise the body does and a new output layer
/// (initialized from the seed) is trained. The model's input standardization is kept, since its weights expect it.
/// </summary>
internal static class InitialModel
{
    /// <summary>Checks that <paramref name="model"/> fits <paramref name="architecture"/>; returns whether it has the same classes.</summary>
    /// <exception cref="ArgumentException">Another input shape or body; the message names the first difference.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public static bool Check(BatchNormCnnTransformer model, NetworkArchitecture architecture, IReadOnlyList<string> classNames)
    {
        NetworkArchitecture theirs = model.Architecture, ours = architecture.Clone();
        (ours.ClassCount, ours.BFloat16Convolutions, ours.Task) = (theirs.ClassCount, theirs.BFloat16Convolutions, theirs.Task);
        if (JsonDifference.First(theirs.ToJson(), ours.ToJson()) is { } d)
        {
            throw new ArgumentException(
                $"BatchNormCnnOptions.InitialModel has another network than these options: {d.Path} is {d.Left ?? "absent"} in the initial model and " +
                $"{d.Right ?? "absent"} here. Training can start from a model with the same input shape and body only (the classes may differ); " +
                "set BatchNormCnnOptions.Network to the model's architecture (BatchNormCnnTransformer.Architecture).",
                nameof(BatchNormCnnOptions.InitialModel));
        }

        return model.Architecture.Task == architecture.Task && (architecture.Task == NetworkTask.Regression || model.ClassNames.SequenceEqual(classNames));
    }

    /// <summary>
    /// Copies the model's weights and buffers into <paramref name="network"/>: all of them with the same classes, all but
    /// the output layer's otherwise.
    /// </summary>
    public static void Apply(BatchNormCnnTransformer model, BatchNormCnnNetwork network, bool sameClasses)
    {
        using BatchNormCnnNetwork source = model.CopyNetwork();
        var target = network.state_dict();
        using var noGrad = torch.no_grad();
        foreach (var (name, value) in source.state_dict())
        {
            bool head = name.StartsWith("logits.", StringComparison.Ordinal) || name.StartsWith("target_", StringComparison.Ordinal);
            if ((sameClasses || !head) && target.TryGetValue(name, out var destination))
                destination.copy_(value);
        }
    }

    /// <summary>A fingerprint of the model's weights (SHA-256, hex), so a resumed run can tell that it started from the same model.</summary>
    public static string Fingerprint(BatchNormCnnTransformer model)
    {
        using BatchNormCnnNetwork network = model.CopyNetwork();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, value) in network.state_dict())
        {
            using Tensor cpu = value.detach().cpu().contiguous();
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            hash.AppendData(cpu.bytes);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }
}
