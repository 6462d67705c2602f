using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>Everything a saved <see cref="BatchNormCnnTransformer"/> holds besides ML.NET's own header.</summary>
internal sealed record BatchNormCnnModelContent(
    ColumnSettings Columns,
    ScoringSettings Scoring,
    NetworkArchitecture Architecture,
    float[] InputMean,
    float[] InputStd,
    ClassLabels Labels,
    TrainingHistory? History,
    IReadOnlyList<NamedTensor> Tensors);

/// <summary>One state-dict entry as plain data.</summary>
internal sealed record NamedTensor(string Name, ScalarType DType, long[] Shape, Array Data);
