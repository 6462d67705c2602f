namespace Bn.MLNet.Networks;

/// <summary>The nonlinearity used after every normalization of a <see cref="BatchNormCnnNetwork"/>.</summary>
public enum ActivationKind
{
    /// <summary>Rectified linear unit (the default).</summary>
    ReLU = 0,

    /// <summary>Logistic sigmoid (the paper's MNIST network and its Inception sigmoid experiment).</summary>
    Sigmoid = 1,

    /// <summary>Hyperbolic tangent.</summary>
    Tanh = 2,
}
