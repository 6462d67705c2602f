using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// Folds every Batch Normalization layer of a network into the convolution or linear layer before it, through
/// <see cref="Bn.MLNet.Normalization.BatchNormFolding"/>'s one routine (w' = w·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε),
/// in float64 from the running statistics).
/// </summary>
internal static class NetworkFolding
{
    /// <summary>A new network in eval mode computing <paramref name="source"/>'s eval-mode function without normalization.</summary>
    /// <exception cref="NotSupportedException">Group or layer normalization, whose statistics depend on each input.</exception>
    public static BatchNormCnnNetwork Fold(BatchNormCnnNetwork source)
    {
        NetworkArchitecture architecture = source.Architecture;
        if (architecture.Normalization is NormalizationKind.Group or NormalizationKind.Layer)
            throw new NotSupportedException($"{architecture.Normalization} normalization computes its statistics per input and cannot be folded.");

        architecture.Normalization = NormalizationKind.None;
        var folded = new BatchNormCnnNetwork(architecture);
        try
        {
            using (torch.no_grad())
            {
                folded.CopyInputStandardization(source);
                NetworkLayers from = source.Layers, to = folded.Layers;
                FoldList(from.Features, from.FeatureRoles, to.Features, to.FeatureRoles);
                FoldList(from.Classifier, from.ClassifierRoles, to.Classifier, to.ClassifierRoles);
                to.Output.weight!.copy_(from.Output.weight!);
                to.Output.bias!.copy_(from.Output.bias!);
            }

            folded.to(source.Device);
            folded.eval();
            return folded;
        }
        catch
        {
            folded.Dispose();
            throw;
        }
    }

    private static void FoldList(
        List<nn.Module<Tensor, Tensor>> source, List<LayerRole> sourceRoles, List<nn.Module<Tensor, Tensor>> target, List<LayerRole> targetRoles)
    {
        int t = 0;
        for (int s = 0; s < source.Count; s++)
        {
            if (sourceRoles[s] is not (LayerRole.Conv or LayerRole.Linear))
                continue;
            while (targetRoles[t] != sourceRoles[s])
                t++;

            Tensor weight = Param(source[s], "weight")!;
            Tensor? bias = Param(source[s], "bias");
            Tensor targetWeight = Param(target[t], "weight")!;
            Tensor targetBias = Param(target[t], "bias")!;
            if (s + 1 < source.Count && sourceRoles[s + 1] == LayerRole.Norm)
            {
                Bn.MLNet.Normalization.BatchNormFolding.FoldInto(weight, bias, source[s + 1], targetWeight, targetBias);
            }
            else
            {
                targetWeight.copy_(weight);
                if (bias is not null)
                    targetBias.copy_(bias);
                else
                    targetBias.zero_();
            }

            t++;
        }
    }

    private static Tensor? Param(nn.Module module, string name) =>
        module.named_parameters(recurse: false).FirstOrDefault(p => p.name == name).parameter;
}
