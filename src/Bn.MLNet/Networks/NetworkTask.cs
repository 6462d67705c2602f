namespace Bn.MLNet.Networks;

/// <summary>What a <see cref="BatchNormCnnNetwork"/>'s output layer predicts, and so its width and its loss.</summary>
public enum NetworkTask
{
    /// <summary>One logit per class (<see cref="NetworkArchitecture.ClassCount"/>); softmax cross-entropy. The default.</summary>
    MulticlassClassification = 0,

    /// <summary>One logit, the score of the positive class; logistic loss (sigmoid cross-entropy).</summary>
    BinaryClassification = 1,

    /// <summary>One value in the label's units (the label is standardized in training and unscaled at the output); squared error or Huber loss.</summary>
    Regression = 2,
}
