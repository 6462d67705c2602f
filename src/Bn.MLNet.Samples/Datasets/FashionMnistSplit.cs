namespace Bn.MLNet.Samples.Datasets;

/// <summary>Which half of Fashion-MNIST to read.</summary>
public enum FashionMnistSplit
{
    /// <summary>The 60,000 training images (<c>train-*-ubyte</c>).</summary>
    Train,

    /// <summary>The 10,000 test images (<c>t10k-*-ubyte</c>).</summary>
    Test,
}
