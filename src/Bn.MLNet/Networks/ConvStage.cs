namespace Bn.MLNet.Networks;

/// <summary>
/// One stage of a <see cref="BatchNormCnnNetwork"/>: <see cref="Repeats"/> blocks of 3×3 convolution (padding 1) → normalization →
/// activation with <see cref="Channels"/> output channels, then an optional 2×2 max-pooling.
/// </summary>
public sealed class ConvStage
{
    /// <summary>Creates an empty stage (for serializers); set the properties.</summary>
    public ConvStage()
    {
    }

    /// <summary>Creates a stage.</summary>
    /// <param name="channels">Output channels of every convolution in the stage.</param>
    /// <param name="repeats">Number of convolution blocks.</param>
    /// <param name="maxPool">Whether a 2×2 max-pooling (stride 2) ends the stage.</param>
    public ConvStage(int channels, int repeats = 1, bool maxPool = true)
    {
        Channels = channels;
        Repeats = repeats;
        MaxPool = maxPool;
    }

    /// <summary>Output channels of every convolution in the stage.</summary>
    public int Channels { get; set; }

    /// <summary>Number of convolution → normalization → activation blocks (at least 1).</summary>
    public int Repeats { get; set; } = 1;

    /// <summary>Whether a 2×2 max-pooling with stride 2 ends the stage.</summary>
    public bool MaxPool { get; set; } = true;
}
