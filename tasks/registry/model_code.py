"""The model definition MLflow stores with each registered Werk model ("models from code").

MLflow runs this file when the model is loaded, instead of unpickling a Python object, so loading
a model never deserialises arbitrary code.
"""

from mlflow.models import set_model

from tasks.registry.pyfunc import WerkGenerator

set_model(WerkGenerator())
