using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>Creates the normalization module for a layer of a <see cref="BatchNormCnnNetwork"/>.</summary>
internal static class NormalizationLayers
{
    /// <summary>Normalization after a convolution with <paramref name="channels"/> output channels; null for <see cref="NormalizationKind.None"/>.</summary>
    public static nn.Module<Tensor, Tensor>? For2d(NetworkArchitecture a, int channels) => a.Normalization switch
    {
        NormalizationKind.Batch => new Bn.MLNet.Normalization.BatchNorm2d(channels, a.BatchNormEps, a.BatchNormMomentum),
        NormalizationKind.BatchRenorm => new Bn.MLNet.Normalization.BatchRenorm2d(channels, a.BatchNormEps, a.BatchNormMomentum, RenormSchedule(a)),
        NormalizationKind.BatchNative => nn.BatchNorm2d(channels, a.BatchNormEps, a.BatchNormMomentum ?? 0.1),
        NormalizationKind.Group => new GroupNormLayer(a.GroupCount, channels, a.BatchNormEps),
        NormalizationKind.Layer => new GroupNormLayer(1, channels, a.BatchNormEps),
        NormalizationKind.None => null,
        _ => throw new ArgumentOutOfRangeException(nameof(a), a.Normalization, "Unknown normalization."),
    };

    /// <summary>Normalization after a hidden linear layer with <paramref name="features"/> outputs; null for <see cref="NormalizationKind.None"/>.</summary>
    public static nn.Module<Tensor, Tensor>? For1d(NetworkArchitecture a, int features) => a.Normalization switch
    {
        NormalizationKind.Batch => new Bn.MLNet.Normalization.BatchNorm1d(features, a.BatchNormEps, a.BatchNormMomentum),
        NormalizationKind.BatchRenorm => new Bn.MLNet.Normalization.BatchRenorm1d(features, a.BatchNormEps, a.BatchNormMomentum, RenormSchedule(a)),
        NormalizationKind.BatchNative => nn.BatchNorm1d(features, a.BatchNormEps, a.BatchNormMomentum ?? 0.1),
        NormalizationKind.Group => new GroupNormLayer(a.GroupCount, features, a.BatchNormEps),
        NormalizationKind.Layer => nn.LayerNorm(features, a.BatchNormEps),
        NormalizationKind.None => null,
        _ => throw new ArgumentOutOfRangeException(nameof(a), a.Normalization, "Unknown normalization."),
    };

    private static Bn.MLNet.Normalization.BatchRenormSchedule RenormSchedule(NetworkArchitecture a)
        => new(a.BatchRenormRMax, a.BatchRenormDMax, a.BatchRenormWarmupSteps);
}
